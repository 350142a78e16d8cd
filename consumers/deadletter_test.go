package consumers_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// lowMaxDeliver gives every JOBS consumer a MaxDeliver of 2, below the default
// retry budget of 3: a ticket whose stage keeps failing transiently runs out of
// deliveries before the job runs out of retries.
var lowMaxDeliver = broker.Resources{MaxDeliver: 2}

// The LLM is down for good: each delivery of the design ticket fails transiently
// and is retried (nak with delay), which counts a delivery. At the second the
// server gives up on the ticket and says so in a max_deliver advisory; the job
// ends waiting_manual and the ticket leaves the work queue. Two processes receive
// the advisory; the job changes once.
func TestMaxDeliveriesParksJob(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, lowMaxDeliver, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "overloaded"}),
	}))
	e.startPipeline()
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	const reason = "ticket for design hit max deliveries (2)"
	last := evs[len(evs)-1]
	if last.Step != events.StepDesign || last.Message != "Delivery failed repeatedly; retry or edit the job" ||
		last.Error == nil || last.Error.Message != reason {
		t.Fatalf("waiting_manual event %+v, want step design and error %q", last, reason)
	}
	if j := e.job(id); j.ErrorMessage != reason || j.RetryCount != 2 || j.Lease != nil {
		t.Fatalf("job error %q, retry_count %d, lease %+v", j.ErrorMessage, j.RetryCount, j.Lease)
	}
	parkedLeavesActive(e, id)
	waitEmpty(t, e)
	e.waitIdle()
	evs = e.eventsOf(id)
	if n := count(evs, func(ev events.StatusEvent) bool { return ev.Status == events.StatusWaitingManual }); n != 1 || evs[len(evs)-1].Status != events.StatusWaitingManual {
		t.Fatalf("%d waiting_manual events, want 1, last:%s", n, describe(evs))
	}
	if n := e.llm.CallsFor("design"); n != 2 {
		t.Fatalf("%d design calls, want 2 (one per delivery)", n)
	}
	if n := testutil.ToFloat64(e.metrics.DeadLetters.WithLabelValues("ticket")); n != 1 {
		t.Fatalf("dead_letters_total{ticket} = %v, want 1", n)
	}
}

// A request whose job id is taken by a value the store cannot read fails on every
// delivery (the duplicate check cannot load the job). When it runs out of
// deliveries it is reported on jobs.rejected and leaves the work queue.
func TestMaxDeliveriesRejectsRequest(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, lowMaxDeliver, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	kv, err := e.nats.JS.KeyValue(e.ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(e.ctx, id, []byte("{not a job")); err != nil {
		t.Fatal(err)
	}
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	r := waitRejection(t, e, id)
	if r.Reason != "max deliveries" || r.Subject != events.SubjectPrompt {
		t.Fatalf("rejection %+v, want reason %q on %s", r, "max deliveries", events.SubjectPrompt)
	}
	waitEmpty(t, e)
	e.waitIdle()
	if rejected := e.rejections(); len(rejected) != 1 {
		t.Fatalf("%d rejections, want 1: %+v", len(rejected), rejected)
	}
}

func waitRejection(t *testing.T, e *env, msgID string) events.Rejection {
	t.Helper()
	var found events.Rejection
	e.fx.Events.WaitFor(t, 30*time.Second, "rejection of "+msgID, func(s testpipeline.Seen) bool {
		for _, r := range s.Rejected {
			if r.MsgID == msgID {
				found = r
				return true
			}
		}
		return false
	})
	return found
}
