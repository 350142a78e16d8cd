package testpipeline

import (
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// WaitIdle waits until the JOBS work queue is empty and the recorder has seen
// every event published before; see WaitTickets.
func (f *Fixture) WaitIdle(t testing.TB) {
	t.Helper()
	f.WaitTickets(t, 0)
}

// WaitTickets waits until the JOBS stream holds exactly n messages, then until
// the recorder has seen every event published before.
//
// This is how a test shows that nothing more happens: a request or ticket leaves
// the work queue only when a stage acknowledges or terminates it, which it does
// after publishing its event and the next ticket, and a retry waits in the queue
// (a nak with delay) until it runs. So once the queue holds only the n messages
// the test expects, every ticket a stage wrongly published has been handled and
// its events recorded. Work driven by a timer (sweeper, janitor) is not covered:
// tests of it wait for a later pass to act on a job of their own.
func (f *Fixture) WaitTickets(t testing.TB, n uint64) {
	t.Helper()
	deadline := time.Now().Add(f.opts.Timeout)
	for {
		s, err := f.NATS.JS.Stream(f.Ctx, events.StreamJobs)
		if err != nil {
			t.Fatalf("stream %s: %v", events.StreamJobs, err)
		}
		got := s.CachedInfo().State.Msgs
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages in %s after %s, want %d; the recorder saw:%s",
				got, events.StreamJobs, f.opts.Timeout, n, f.Events.Describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.Events.Sync(t)
}
