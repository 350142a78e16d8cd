package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
)

// scope is what the handling of one ticket keeps beside its context, so that a
// stage costs as few round trips to NATS as it can:
//   - the job it claimed: its last written value and revision, so the next write
//     needs no read first, and the watch on its key, opened before the claim so no
//     write after the claim goes unseen;
//   - its publishes (status events, the next ticket), sent without waiting for
//     their acknowledgements, which the runner collects before it acks the ticket.
//
// The runner opens a scope per message and closes it once the message is settled.
// Outside a scope (control API, sweeper) every write reads first and every
// publish waits for its acknowledgement.
type scope struct {
	mu      sync.Mutex
	holds   map[string]*hold // by lease owner
	pending []pending
	// fresh is set when the claim found its job still waiting for this
	// hand-off (pending, or waiting_ai_fix for a fix): no worker claimed it
	// before, so no answer is recorded for it yet, and what this process
	// remembers of the job's conversation (Pipeline.convs) is as good as a read.
	fresh bool
}

// freshClaim reports whether the job claimed in ctx's scope was claimed for
// the first time in this hand-off.
func freshClaim(ctx context.Context) bool {
	sc := scopeOf(ctx)
	return sc != nil && sc.fresh
}

// hold is a job claimed in a scope.
type hold struct {
	mu      sync.Mutex
	job     *events.Job // as last written by this worker
	rev     uint64
	written chan struct{} // a write by someone else may have taken the job
	stop    func()        // ends the watch
}

// pending is a publish not yet acknowledged.
type pending struct {
	ack     jetstream.PubAckFuture
	subject string
	data    []byte
	msgID   string
	ticket  bool // a ticket (else a status event); either failure fails the delivery
}

type scopeKey struct{}

func withScope(ctx context.Context) (context.Context, *scope) {
	sc := &scope{holds: map[string]*hold{}}
	return context.WithValue(ctx, scopeKey{}, sc), sc
}

func scopeOf(ctx context.Context) *scope {
	sc, _ := ctx.Value(scopeKey{}).(*scope)
	return sc
}

// hold returns the job owner claimed in ctx's scope, or nil.
func holdOf(ctx context.Context, owner string) *hold {
	sc := scopeOf(ctx)
	if sc == nil {
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.holds[owner]
}

func (sc *scope) addHold(owner string, h *hold) {
	sc.mu.Lock()
	sc.holds[owner] = h
	sc.mu.Unlock()
}

func (sc *scope) addPending(p pending) {
	sc.mu.Lock()
	sc.pending = append(sc.pending, p)
	sc.mu.Unlock()
}

// signal notes a write that may have taken the job; it never blocks.
func (h *hold) signal() {
	select {
	case h.written <- struct{}{}:
	default: // a check is already due
	}
}

// last is the job as this worker last wrote it, and its revision.
func (h *hold) last() (*events.Job, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.job, h.rev
}

func (h *hold) wrote(j *events.Job, rev uint64) {
	h.mu.Lock()
	h.job, h.rev = j, rev
	h.mu.Unlock()
}

// publishAckTimeout bounds the wait for the acknowledgements of a scope's
// publishes, counted from when the runner starts collecting them, and then the
// publish again of those not acknowledged. A stream with no leader (its node
// killed, an election) never answers, and a worker that waited for ever would
// keep heartbeating its ticket, so nobody else could take it.
const publishAckTimeout = 5 * time.Second

// republishTimeout bounds the publishes again, with their retries, of one scope:
// long enough to outlast the elections after a cluster node is lost (a status
// event not published by then is lost for good once the job moves on: the
// redelivered ticket re-emits only the current one).
const republishTimeout = 30 * time.Second

// settle waits for the scope's publishes, for at most publishAckTimeout. One that
// failed or was not acknowledged in time is published again with a wait for its
// acknowledgement (its dedupe id makes that harmless if the first one was stored
// after all), within republishTimeout; a ticket or an event that still cannot be
// published is an error, so the message is retried (naked with back-off, or
// redelivered to any process, which re-emits the job's event) rather than acked
// with the job stranded or its event lost.
func (p *Pipeline) settleScope(ctx context.Context, sc *scope) error {
	sc.mu.Lock()
	pend := sc.pending
	sc.pending = nil
	sc.mu.Unlock()
	if len(pend) == 0 {
		return nil
	}
	acks := time.NewTimer(publishAckTimeout)
	defer acks.Stop()
	rctx, cancel := context.WithTimeout(ctx, publishAckTimeout+republishTimeout)
	defer cancel()
	var errs []error
	for _, pub := range pend {
		var err error
		select {
		case <-pub.ack.Ok():
			continue
		case err = <-pub.ack.Err():
		case <-acks.C:
			acks.Reset(0) // the deadline passed for every other one too
			err = errAckTimeout
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.log.WarnContext(ctx, "publish not acknowledged: publishing again", "subject", pub.subject, "error", err)
		if err = p.publishAgain(rctx, pub.subject, pub.data, pub.msgID); err == nil {
			continue
		}
		if pub.ticket {
			errs = append(errs, fmt.Errorf("publish ticket %s: %w", pub.msgID, err))
			continue
		}
		// An event that cannot be published fails the delivery too: acked, its
		// ticket would leave the state written and its event lost for good
		// (a final one included); redelivered, it re-emits the job's event.
		if p.metrics != nil {
			p.metrics.EventPublishErrs.Inc()
		}
		p.log.ErrorContext(ctx, "publish status event", "msg_id", pub.msgID, "error", err)
		errs = append(errs, fmt.Errorf("publish status event %s: %w", pub.msgID, err))
	}
	return errors.Join(errs...)
}

// publishAgain publishes a message whose first publish was not acknowledged,
// trying again with back-off until it is stored or ctx ends: an election
// answers "no response from stream" at once for a while, and an event given
// up is lost for good once its job moves on.
func (p *Pipeline) publishAgain(ctx context.Context, subject string, data []byte, msgID string) error {
	delay := 250 * time.Millisecond
	for {
		err := p.publishSync(ctx, subject, data, msgID)
		if err == nil || !wait.Sleep(ctx, delay) {
			return err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// close ends the watches of the scope's jobs.
func (sc *scope) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for owner, h := range sc.holds {
		h.stop()
		delete(sc.holds, owner)
	}
}

// recentMax bounds the values each recent keeps (a job or a conversation is a
// few KiB: design and LaTeX).
const recentMax = 1024

// recent remembers the value this process last wrote of each job it handed to
// another stage, or of each conversation it recorded an answer in, so that the
// worker that takes the hand-off in this process claims the job, or reads the
// conversation, without a read first (kvstore.From). A value changed since by
// someone else (another process, a user, the meta stage) costs one refused
// write and then the read, as without it. It holds at most max values,
// forgetting the oldest.
type recent[T any] struct {
	mu     sync.Mutex
	max    int
	values map[string]recentValue[T]
	ring   []recentKey // insertion order, for forgetting
	next   int
	seq    uint64
}

type recentValue[T any] struct {
	v   *T
	rev uint64
	seq uint64
}

type recentKey struct {
	id  string
	seq uint64
}

func newRecent[T any](max int) *recent[T] {
	return &recent[T]{max: max, values: make(map[string]recentValue[T], max), ring: make([]recentKey, max)}
}

// put remembers v, the value of id as written at rev; the caller no longer
// changes it.
func (r *recent[T]) put(id string, v *T, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	if old := r.ring[r.next]; old.id != "" {
		if e, ok := r.values[old.id]; ok && e.seq == old.seq {
			delete(r.values, old.id)
		}
	}
	r.values[id] = recentValue[T]{v: v, rev: rev, seq: r.seq}
	r.ring[r.next] = recentKey{id: id, seq: r.seq}
	r.next = (r.next + 1) % r.max
}

// take returns and forgets the remembered value of id, or nil.
func (r *recent[T]) take(id string) (*T, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.values[id]
	if !ok {
		return nil, 0
	}
	delete(r.values, id)
	return e.v, e.rev
}

// peek returns the remembered value of id, or nil, and keeps it: the caller
// must not change it.
func (r *recent[T]) peek(id string) (*T, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.values[id]
	return e.v, e.rev
}
