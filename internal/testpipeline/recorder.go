package testpipeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/events"
)

// syncSubject is where Sync publishes its marks. It is under jobs.>, so the
// recorder's one subscription receives them in order with the events, and no
// stream captures it.
const syncSubject = "jobs._testpipeline.sync"

// Ignore reports a message the recorder leaves out.
type Ignore func(*nats.Msg) bool

// Recorder records what a watcher of jobs.> sees: every status event by job, in
// arrival order, and every rejection. An event published again
// (events.SubjectStatusAgain) is recorded only when no event of that job and
// revision was, as JOB_EVENTS stores it. It subscribes before the pipeline starts.
type Recorder struct {
	t       testing.TB
	nc      *nats.Conn
	ignore  Ignore
	timeout time.Duration

	mu       sync.Mutex
	seen     Seen
	marks    int
	changed  chan struct{} // closed and replaced on every record
	syncSent int
}

// Seen is what a Recorder has seen. A WaitFor predicate reads it under the
// recorder's lock and must not keep it.
type Seen struct {
	// Status holds each job's status events in arrival order.
	Status map[string][]events.StatusEvent
	// Jobs lists the jobs with events in the order of their first event.
	Jobs []string
	// Rejected holds the rejections in arrival order.
	Rejected []events.Rejection
}

// Of returns job id's events.
func (s Seen) Of(id string) []events.StatusEvent { return s.Status[id] }

// Last returns job id's latest event, if it has one.
func (s Seen) Last(id string) (events.StatusEvent, bool) {
	evs := s.Status[id]
	if len(evs) == 0 {
		return events.StatusEvent{}, false
	}
	return evs[len(evs)-1], true
}

func newRecorder(t testing.TB, nc *nats.Conn, ignore Ignore, timeout time.Duration) *Recorder {
	t.Helper()
	r := &Recorder{t: t, nc: nc, ignore: ignore, timeout: timeout,
		seen: Seen{Status: map[string][]events.StatusEvent{}}, changed: make(chan struct{})}
	sub, err := nc.Subscribe("jobs.>", r.record)
	if err != nil {
		t.Fatalf("subscribe jobs.>: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return r
}

func (r *Recorder) record(m *nats.Msg) {
	if r.ignore != nil && r.ignore(m) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m.Subject {
	case events.SubjectStatus, events.SubjectStatusAgain:
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			r.t.Errorf("status event is not JSON: %v: %s", err, m.Data)
			return
		}
		if m.Subject == events.SubjectStatusAgain && slices.ContainsFunc(r.seen.Status[ev.JobID],
			func(seen events.StatusEvent) bool { return seen.Revision == ev.Revision }) {
			return // JOB_EVENTS drops it as a duplicate too
		}
		if _, ok := r.seen.Status[ev.JobID]; !ok {
			r.seen.Jobs = append(r.seen.Jobs, ev.JobID)
		}
		r.seen.Status[ev.JobID] = append(r.seen.Status[ev.JobID], ev)
	case events.SubjectRejected:
		var rej events.Rejection
		if err := json.Unmarshal(m.Data, &rej); err != nil {
			r.t.Errorf("rejection is not JSON: %v: %s", err, m.Data)
			return
		}
		r.seen.Rejected = append(r.seen.Rejected, rej)
	case syncSubject:
		r.marks++
	default:
		return // a ticket or request on its way to the JOBS stream
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// WaitFor waits until pred holds for what the recorder has seen, at most timeout,
// and fails the test with what (the awaited events) and everything it saw when
// it does not. It checks pred again at every message recorded, under the
// recorder's lock: pred must not call the Recorder.
func (r *Recorder) WaitFor(t testing.TB, timeout time.Duration, what string, pred func(Seen) bool) {
	t.Helper()
	r.wait(t, timeout, what, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return pred(r.seen)
	})
}

// wait waits until check holds, checking it again at every message recorded.
func (r *Recorder) wait(t testing.TB, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if check() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s within %s; the recorder saw:%s", what, timeout, r.Describe())
		}
	}
}

// WaitStatus waits for job id's latest event to have status st and returns the
// job's events.
func (r *Recorder) WaitStatus(t testing.TB, id string, st events.Status) []events.StatusEvent {
	t.Helper()
	return r.WaitLatest(t, id, string(st), func(ev events.StatusEvent) bool { return ev.Status == st })
}

// WaitLatest waits until job id's latest event satisfies ok and returns the
// job's events; what names the awaited event in a failure.
func (r *Recorder) WaitLatest(t testing.TB, id, what string, ok func(events.StatusEvent) bool) []events.StatusEvent {
	t.Helper()
	// ok runs outside the lock: it may read the recorder.
	r.wait(t, r.timeout, "event "+what+" of job "+id, func() bool {
		r.mu.Lock()
		last, found := r.seen.Last(id)
		r.mu.Unlock()
		return found && ok(last)
	})
	return r.Of(id)
}

// Of returns a copy of job id's events.
func (r *Recorder) Of(id string) []events.StatusEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.StatusEvent(nil), r.seen.Status[id]...)
}

// Jobs lists the jobs with events in the order of their first event.
func (r *Recorder) Jobs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen.Jobs...)
}

// Rejections returns a copy of the rejections.
func (r *Recorder) Rejections() []events.Rejection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Rejection(nil), r.seen.Rejected...)
}

// Sync waits until the recorder has seen every message the server routed to it
// before Sync was called: it publishes a mark behind them on the recorder's
// subscription and waits for it.
func (r *Recorder) Sync(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	r.syncSent++
	want := r.syncSent
	r.mu.Unlock()
	if err := r.nc.Publish(syncSubject, nil); err != nil {
		t.Fatalf("publish sync mark: %v", err)
	}
	r.WaitFor(t, r.timeout, "sync mark", func(s Seen) bool { return r.marks >= want })
}

// Describe lists everything the recorder saw, job by job.
func (r *Recorder) Describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, id := range r.seen.Jobs {
		fmt.Fprintf(&b, "\n job %s:%s", id, Describe(r.seen.Status[id]))
	}
	for _, rej := range r.seen.Rejected {
		fmt.Fprintf(&b, "\n rejected %s on %s: %s", rej.MsgID, rej.Subject, rej.Reason)
	}
	if b.Len() == 0 {
		return " nothing"
	}
	return b.String()
}

// Describe lists evs one a line: status/step: message.
func Describe(evs []events.StatusEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + string(ev.Status) + "/" + string(ev.Step) + ": " + ev.Message)
	}
	return b.String()
}
