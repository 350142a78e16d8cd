package consumers_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// A job id is free again once the janitor deleted its job, and a job submitted
// again under it runs at once: with a retention far shorter than the JOBS
// duplicates window (2 minutes), the new job's first ticket must not repeat the
// deleted job's dedupe id, or the stream drops it and only the sweeper (here an
// hour away) would ever move the job. Both ways in are tried: the control API
// (whose hand-off waits for its acknowledgement) and the prompt stage (whose
// hand-off is collected by the runner).
func TestDeletedJobIDSubmittedAgainCompletes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		again func(e *env, req events.JobRequest)
	}{
		{"control API", func(e *env, req events.JobRequest) {
			if _, err := e.plane.Submit(e.ctx, req); err != nil {
				e.t.Fatalf("submit again: %v", err)
			}
		}},
		{"jobs.prompt", func(e *env, req events.JobRequest) {
			// Under the same Nats-Msg-Id the request itself would be a duplicate
			// inside the window (the client's own dedupe): a new one.
			data, err := json.Marshal(req)
			if err != nil {
				e.t.Fatal(err)
			}
			e.publish(data, uuid.NewString())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, steps("outline", goodLatex, ""), func(c *testpipeline.Setup) {
				c.Maintenance.Janitor.Retention = new(time.Second)
				c.Maintenance.Janitor.Interval = 20 * time.Millisecond
				c.Maintenance.Sweeper.Interval = time.Hour
			})
			id := uuid.NewString()
			req := events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"}
			e.submit(req)
			e.waitStatus(id, events.StatusCompleted)
			deadline := time.Now().Add(30 * time.Second)
			for job, conv, pdf := e.stored(id); job || conv || pdf; job, conv, pdf = e.stored(id) {
				if time.Now().After(deadline) {
					t.Fatalf("finished job not deleted within 30s (job %v, conversation %v, pdf %v)", job, conv, pdf)
				}
				time.Sleep(20 * time.Millisecond)
			}
			before := len(e.eventsOf(id))
			designs := e.llm.CallsFor("design")

			tc.again(e, req)
			// Well below the sweeper's hour and the idle time it waits for: only
			// the new job's own first ticket can finish it in time.
			deadline = time.Now().Add(20 * time.Second)
			for {
				evs := e.eventsOf(id)[before:]
				if len(evs) > 0 && evs[len(evs)-1].Status == events.StatusCompleted {
					if evs[0].Status != events.StatusPending {
						t.Fatalf("the new job's events do not start pending:%s", describe(evs))
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job submitted again under a deleted id not completed within 20s:%s", describe(evs))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := e.llm.CallsFor("design") - designs; n != 1 {
				t.Fatalf("%d design calls for the new job, want 1 (the deleted job's answer is not its)", n)
			}
		})
	}
}
