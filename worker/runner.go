package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// handlerFunc is one stage's work on one message. Its error decides the
// settlement: nil, ErrStale or errGaveUp ack, a storage refusal
// (events.ErrStorage) nak with delay and a pause of fetching (pause.go),
// *RetryError nak with delay, ErrPermanent term, anything else nak with back-off
// by delivery count.
type handlerFunc func(ctx context.Context, msg jetstream.Msg) error

// runner consumes every queue of one stage into one pool of workers: a worker
// that frees takes the waiting ticket of the highest priority.
type runner struct {
	stage       events.Stage
	handle      handlerFunc
	settleScope func(context.Context, *scope) error
	concurrency int
	heartbeat   time.Duration
	backoff     func(int) time.Duration
	log         *slog.Logger
	metrics     *metrics.Metrics
	// storageErr is nil once storage works again (Deps.Storage).
	storageErr func() error

	slots      *slots
	bindings   []*binding // one per queue, in order of priority
	wg         sync.WaitGroup
	mu         sync.Mutex // guards the bindings' consumptions and the pause
	pause      pause
	stopping   chan struct{}
	workCtx    context.Context
	cancelWork context.CancelFunc

	settleMu sync.Mutex
	settling map[*struct{}]time.Time // workers collecting acknowledgements, since when
}

// binding is the runner's consumption of one queue.
type binding struct {
	queue     events.Queue
	level     int                      // index in the slots' levels: 0 is the highest
	cc        jetstream.ConsumeContext // nil while the consumer is gone
	downSince time.Time
	paused    bool // its consumption was stopped by a pause
}

// expectFor is how long a free slot is kept for a queue whose last ticket said
// more are waiting on the server, before a lower ticket may take it.
const expectFor = time.Second

func (r *runner) start(ctx context.Context, js jetstream.JetStream) error {
	queues := events.QueuesOf(r.stage)
	cons := make([]jetstream.Consumer, len(queues))
	for i, q := range queues {
		c, err := js.Consumer(ctx, events.StreamJobs, q.Durable())
		if err != nil {
			return fmt.Errorf("consumer %s: %w", q.Durable(), err)
		}
		// A shared consumer's AckWait is whatever the last process to provision it
		// set; heartbeat for that one, not only for this process's setting.
		if aw := c.CachedInfo().Config.AckWait; aw > 0 && aw/3 < r.heartbeat {
			r.heartbeat = aw / 3
		}
		cons[i] = c
		r.bindings = append(r.bindings, &binding{queue: q, level: i})
	}
	r.slots = newSlots(r.concurrency, len(queues))
	r.stopping = make(chan struct{})
	r.workCtx, r.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	for i, b := range r.bindings {
		r.expectBacklog(b, cons[i])
		cc, err := r.consume(b, cons[i])
		if err != nil {
			r.stop(ctx)
			return fmt.Errorf("consume %s: %w", b.queue.Durable(), err)
		}
		r.setConsumption(b, cc)
		go r.keepConsuming(js, b, cc)
	}
	return nil
}

// consume starts delivering b's queue to dispatch, pulling up to the stage's
// concurrency at once, except for the lowest of several queues, which pulls one
// ticket at a time: a low ticket may wait for as long as normal ones keep the
// workers busy, and the one it holds waits in dispatch, heartbeated, where a
// prefetched one would sit unheartbeated and be redelivered after AckWait until
// it hit MaxDeliver. Normal tickets wait only while high ones, which are meant to
// be few, keep every worker busy; pulling them one at a time cost a round trip
// per ticket and tripled the hand-off latency (BENCHMARKS.md).
func (r *runner) consume(b *binding, cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	pull := r.concurrency
	if len(r.bindings) > 1 && b.level == len(r.bindings)-1 {
		pull = 1
	}
	return cons.Consume(func(msg jetstream.Msg) { r.dispatch(b, msg) },
		jetstream.PullMaxMessages(pull),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Warn("consume", "step", r.stage, "consumer", b.queue.Durable(), "error", err)
		}))
}

// dispatch runs in the queue's delivery goroutine; it blocks while all workers
// are busy, which bounds what this process holds.
func (r *runner) dispatch(b *binding, msg jetstream.Msg) {
	if d := r.pausedFor(); d > 0 {
		_ = msg.NakWithDelay(d) // fetched before the pause
		return
	}
	if !r.acquire(b.level, msg) {
		_ = msg.Nak()
		return
	}
	select {
	case <-r.stopping:
		r.slots.release()
		_ = msg.Nak()
		return
	default:
	}
	r.wg.Add(1)
	go func() {
		defer func() { r.slots.release(); r.wg.Done() }()
		r.run(msg)
	}()
}

// acquire takes a worker slot for msg at its queue's level, heartbeating msg
// while it waits so it is not redelivered elsewhere meanwhile; false when the
// runner stops first.
func (r *runner) acquire(level int, msg jetstream.Msg) bool {
	w := r.slots.enter(level, nextExpected(msg))
	if w == nil {
		return true
	}
	hb := time.NewTicker(r.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.stopping:
			r.slots.leave(w)
			return false
		case <-w.ready:
			return true
		case <-hb.C:
			_ = msg.InProgress()
		}
	}
}

// expectBacklog keeps the first free slots for b's queue for a moment when its
// consumer has tickets waiting: they are on their way, and a lower queue's
// ticket delivered first must not take their place.
func (r *runner) expectBacklog(b *binding, cons jetstream.Consumer) {
	if cons.CachedInfo().NumPending > 0 {
		r.slots.expectMore(b.level, time.Now().Add(expectFor))
	}
}

// nextExpected is until when the next ticket of msg's queue is expected once msg
// has a worker: for expectFor when the server said more wait behind msg (the
// queue pulls the next as soon as msg is dispatched), else never.
func nextExpected(msg jetstream.Msg) time.Time {
	if md, err := msg.Metadata(); err == nil && md.NumPending > 0 {
		return time.Now().Add(expectFor)
	}
	return time.Time{}
}

func (r *runner) run(msg jetstream.Msg) {
	start := time.Now()
	gauge := r.metrics.JobsInFlightFor(string(r.stage))
	gauge.Inc()
	defer gauge.Dec()

	hbCtx, stopHB := context.WithCancel(r.workCtx)
	go r.heartbeatLoop(hbCtx, msg)
	ctx, sc := withScope(r.workCtx)
	defer sc.close()
	err := r.handle(ctx, msg)
	settled := r.settleStarted()
	if serr := r.settleScope(ctx, sc); err == nil {
		err = serr
	}
	settled()
	stopHB()
	if err == nil {
		failpoint.Inject(r.stage, failpoint.AfterPublish)
	}

	outcome := r.settle(msg, err)
	r.metrics.StageDone(string(r.stage), outcome, time.Since(start))
}

// stuckAfter is how long a worker may wait for the acknowledgements of its
// publishes before the process reports it stuck (Pipeline.Consuming, and so
// /readyz): well past the bounded wait of settleScope, so only a wait that
// escaped its deadline counts.
var stuckAfter = 2 * (publishAckTimeout + republishTimeout)

// settleStarted notes a worker starting to collect its acknowledgements; the
// returned func notes it done.
func (r *runner) settleStarted() func() {
	key := new(struct{})
	r.settleMu.Lock()
	if r.settling == nil {
		r.settling = map[*struct{}]time.Time{}
	}
	r.settling[key] = time.Now()
	r.settleMu.Unlock()
	return func() {
		r.settleMu.Lock()
		delete(r.settling, key)
		r.settleMu.Unlock()
	}
}

// stuck names the workers that have waited for acknowledgements longer than
// stuckAfter, or is nil.
func (r *runner) stuck() error {
	r.settleMu.Lock()
	defer r.settleMu.Unlock()
	n := 0
	for _, since := range r.settling {
		if time.Since(since) > stuckAfter {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("stage %s: %d of %d workers stuck waiting for NATS acknowledgements for more than %s",
		r.stage, n, r.concurrency, stuckAfter)
}

func (r *runner) heartbeatLoop(ctx context.Context, msg jetstream.Msg) {
	t := time.NewTicker(r.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				r.log.Warn("heartbeat", "step", r.stage, "error", err)
			}
		}
	}
}

// settle acks, naks or terminates msg according to err (or, for a lost lease,
// leaves it to expire) and names the outcome.
func (r *runner) settle(msg jetstream.Msg, err error) string {
	var retry *RetryError
	var outcome string
	var settleErr error
	switch {
	case err == nil:
		r.storageWorks()
		outcome, settleErr = "ok", msg.Ack()
	case errors.Is(err, errAborted):
		outcome, settleErr = "aborted", msg.Ack()
	case errors.Is(err, errGaveUp):
		outcome, settleErr = "failed", msg.Ack()
	case errors.Is(err, ErrStale):
		outcome, settleErr = "stale", msg.Ack()
	case errors.Is(err, errLeaseLost):
		outcome = "abandoned"
		r.log.Warn("lease lost: result discarded", "step", r.stage, "error", err)
	case kvstore.IsStorage(err):
		d := r.pauseFetching()
		outcome, settleErr = "storage", msg.NakWithDelay(d)
		r.log.Warn("storage full: fetching paused", "step", r.stage, "pause", d, "error", err)
	case errors.As(err, &retry):
		outcome, settleErr = "retry", msg.NakWithDelay(retry.Delay)
	case errors.Is(err, ErrPermanent):
		outcome, settleErr = "rejected", msg.Term()
		r.log.Warn("message terminated", "step", r.stage, "error", err)
	case errors.Is(err, context.Canceled) && r.workCtx.Err() != nil:
		outcome, settleErr = "shutdown", msg.Nak()
	default:
		outcome = "error"
		delivered := 1
		if md, mdErr := msg.Metadata(); mdErr == nil {
			delivered = int(md.NumDelivered)
		}
		settleErr = msg.NakWithDelay(r.backoff(delivered))
		r.log.Error("stage failed", "step", r.stage, "error", err, "delivered", delivered)
	}
	if settleErr != nil {
		r.log.Warn("settle message", "step", r.stage, "outcome", outcome, "error", settleErr)
	}
	return outcome
}

// stop stops fetching, naks what was fetched but not started (so another process
// gets it at once), and waits for in-flight work until ctx ends; then it cancels
// that work, which hands its jobs back, and waits for the hand-back.
func (r *runner) stop(ctx context.Context) {
	if r.stopping == nil {
		return
	}
	r.mu.Lock()
	close(r.stopping)
	var ccs []jetstream.ConsumeContext
	for _, b := range r.bindings {
		if b.cc != nil {
			ccs = append(ccs, b.cc)
		}
	}
	r.mu.Unlock()
	for _, cc := range ccs {
		cc.Drain() // buffered messages reach dispatch, which naks them
	}
	for _, cc := range ccs {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
		}
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.log.Warn("shutdown deadline: cancelling in-flight work", "step", r.stage)
		r.cancelWork()
		<-done
	}
	r.cancelWork()
}
