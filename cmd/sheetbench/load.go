package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// trace is what the harness saw of one job: when its request was due, and the
// time of each status event (the job's KV write time, from the event).
type trace struct {
	enqueued time.Time
	pending  map[events.Step]time.Time // first pending event of each step
	running  map[events.Step]time.Time // first running event of each step
	done     time.Time                 // first final event
	final    events.Status
	message  string
}

// check reports a completed job whose events the tracker did not all see.
func (tr *trace) check() error {
	for _, st := range queueSteps {
		if _, ok := tr.pending[st]; !ok {
			return fmt.Errorf("no pending event at step %s", st)
		}
		if _, ok := tr.running[st]; !ok {
			return fmt.Errorf("no running event at step %s", st)
		}
	}
	return nil
}

// tracker follows the jobs of one run on jobs.status (core NATS, subscribed
// before the first request is sent, so no event is missed).
type tracker struct {
	mu        sync.Mutex
	traces    map[string]*trace
	remaining int
	finished  chan struct{} // closed once every job reached a final event
	onDone    func()
	sub       *nats.Subscription
}

// track subscribes for the jobs ids; onDone (may be nil) runs once per job
// that ends, on the subscription's goroutine.
func track(nc *nats.Conn, ids []string, onDone func()) (*tracker, error) {
	t := &tracker{traces: make(map[string]*trace, len(ids)), remaining: len(ids),
		finished: make(chan struct{}), onDone: onDone}
	for _, id := range ids {
		t.traces[id] = &trace{pending: map[events.Step]time.Time{}, running: map[events.Step]time.Time{}}
	}
	sub, err := nc.Subscribe(events.SubjectStatus, t.record)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", events.SubjectStatus, err)
	}
	// A run emits about seven events per job in bursts; never drop one.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", events.SubjectStatus, err)
	}
	t.sub = sub
	return t, nil
}

func (t *tracker) record(m *nats.Msg) {
	var ev events.StatusEvent
	if json.Unmarshal(m.Data, &ev) != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.traces[ev.JobID]
	if tr == nil || !tr.done.IsZero() {
		return
	}
	switch ev.Status {
	case events.StatusPending:
		if _, seen := tr.pending[ev.Step]; !seen {
			tr.pending[ev.Step] = ev.Time
		}
	case events.StatusRunning:
		if _, seen := tr.running[ev.Step]; !seen {
			tr.running[ev.Step] = ev.Time
		}
	}
	if !ev.Final() {
		return
	}
	tr.done, tr.final, tr.message = ev.Time, ev.Status, ev.Message
	if t.onDone != nil {
		t.onDone()
	}
	t.remaining--
	if t.remaining == 0 {
		close(t.finished)
	}
}

func (t *tracker) enqueued(id string, at time.Time) {
	t.mu.Lock()
	t.traces[id].enqueued = at
	t.mu.Unlock()
}

// wait returns once every job ended, or an error naming how many did not
// within d.
func (t *tracker) wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.finished:
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = t.sub.Unsubscribe()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.remaining > 0 {
		return fmt.Errorf("%d of %d jobs did not finish within %s", t.remaining, len(t.traces), d)
	}
	for id, tr := range t.traces {
		if tr.final != events.StatusCompleted {
			return fmt.Errorf("job %s ended %s: %s", id, tr.final, tr.message)
		}
		if err := tr.check(); err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
	}
	return nil
}

// all returns the traces once wait returned.
func (t *tracker) all() []*trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*trace, 0, len(t.traces))
	for _, tr := range t.traces {
		out = append(out, tr)
	}
	return out
}

// submitter publishes job requests on jobs.prompt with asynchronous
// confirmation, as a client that follows its jobs would (job_id and
// Nats-Msg-Id set).
type submitter struct {
	js      jetstream.JetStream
	tr      *tracker // records each request's due time; nil: none
	prompt  func(i int) string
	futures []jetstream.PubAckFuture
}

func newIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

// send publishes job ids[i], due at at.
func (s *submitter) send(id string, i int, at time.Time) error {
	data, err := json.Marshal(events.JobRequest{JobID: id, UserID: "sheetbench", Prompt: s.prompt(i)})
	if err != nil {
		return err
	}
	if s.tr != nil {
		s.tr.enqueued(id, at)
	}
	f, err := s.js.PublishAsync(events.SubjectPrompt, data, jetstream.WithMsgID(id),
		jetstream.WithStallWait(time.Minute))
	if err != nil {
		return fmt.Errorf("publish request %s: %w", id, err)
	}
	s.futures = append(s.futures, f)
	return nil
}

// confirmed waits for every publish's acknowledgement.
func (s *submitter) confirmed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var errs []error
	for _, f := range s.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("request acknowledgements: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d requests not stored, the first: %w", len(errs), len(s.futures), errs[0])
	}
	return nil
}

// saturate runs ids closed-loop: window jobs in flight at once, a new request as
// soon as a job ends, each enqueued when it is sent.
func saturate(ctx context.Context, s *submitter, ids []string, slots chan struct{}) error {
	for i, id := range ids {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := s.send(id, i, time.Now()); err != nil {
			return err
		}
	}
	return s.confirmed(ctx)
}

// offer runs ids open-loop at rate jobs/s on a fixed schedule: request i is due
// at start + i/rate and its latency counts from then, so a sender that falls
// behind does not hide the delay (no coordinated omission).
func offer(ctx context.Context, s *submitter, ids []string, rate float64) error {
	start := time.Now().Add(10 * time.Millisecond)
	interval := time.Duration(float64(time.Second) / rate)
	for i, id := range ids {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := s.send(id, i, due); err != nil {
			return err
		}
	}
	return s.confirmed(ctx)
}
