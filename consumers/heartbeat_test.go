package consumers_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// shortAckWait gives the consumers and the pipeline a 1s AckWait and lease.
func shortAckWait(c *testpipeline.Setup) {
	c.Pipeline.AckWait = time.Second
	c.Pipeline.LeaseTTL = time.Second
}

// A design call four times longer than AckWait and the lease: the runner's
// InProgress heartbeats keep the ticket from being redelivered (to this process
// or to the second one running) and the lease renewals keep the job this
// worker's. The job completes with one design call, one running event per stage
// and no delivery retried.
func TestLongWorkHeartbeats(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, broker.Resources{AckWait: time.Second}, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline", Delay: 4 * time.Second}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}), shortAckWait)
	e.startPipeline()
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	e.waitIdle()
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls, want 1", n)
	}
	running := count(evs, func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })
	if running != 3 || len(e.eventsOf(id)) != len(evs) {
		t.Fatalf("%d running events (want 3, one per stage), %d events after completion (want %d):%s",
			running, len(e.eventsOf(id)), len(evs), describe(e.eventsOf(id)))
	}
	for _, outcome := range []string{"retry", "error", "abandoned"} {
		if n := testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("design", outcome)); n != 0 {
			t.Fatalf("stage_messages_total{design,%s} = %v: the ticket was redelivered", outcome, n)
		}
	}
}
