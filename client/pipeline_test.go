package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// testTimeout bounds every test's waits.
const testTimeout = 2 * time.Minute

// startPipeline starts a test server running the whole pipeline.
func startPipeline(t *testing.T) *testnats.Server { return testpipeline.Start(t) }

func newClient(t *testing.T, s *testnats.Server) *client.Client {
	t.Helper()
	c, err := client.New(s.NC)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// collect reads ch until it closes. It fails the test when the channel closed
// because ctx ended rather than after the job's last event.
func collect(ctx context.Context, t *testing.T, ch <-chan events.StatusEvent) []events.StatusEvent {
	t.Helper()
	var got []events.StatusEvent
	for ev := range ch {
		got = append(got, ev)
	}
	if len(got) == 0 || !got[len(got)-1].Final() {
		t.Fatalf("watch closed without a final event (ctx err %v); got %s", ctx.Err(), describe(got))
	}
	return got
}

// describe renders events as "status@step#revision ..." for failure messages.
func describe(evs []events.StatusEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s@%s#%d ", ev.Status, ev.Step, ev.Revision)
	}
	return b.String()
}

// checkCompleted checks the event history of a job that ran from submission to a
// PDF: it starts pending at design, revisions only grow, every event is the
// job's, and it ends completed at done.
func checkCompleted(t *testing.T, id string, evs []events.StatusEvent) {
	t.Helper()
	first, last := evs[0], evs[len(evs)-1]
	if first.Status != events.StatusPending || first.Step != events.StepDesign {
		t.Errorf("first event %s@%s, want pending@design; all: %s", first.Status, first.Step, describe(evs))
	}
	if last.Status != events.StatusCompleted || last.Step != events.StepDone || last.PDFURL == "" {
		t.Errorf("last event %s@%s pdf_url %q, want completed@done with a pdf_url", last.Status, last.Step, last.PDFURL)
	}
	steps := map[events.Step]bool{}
	for i, ev := range evs {
		if ev.JobID != id {
			t.Errorf("event %d is job %s's, want %s", i, ev.JobID, id)
		}
		if i > 0 && ev.Revision <= evs[i-1].Revision {
			t.Errorf("event %d revision %d after %d: out of order: %s", i, ev.Revision, evs[i-1].Revision, describe(evs))
		}
		if ev.Status == events.StatusRunning {
			steps[ev.Step] = true
		}
	}
	for _, st := range []events.Step{events.StepDesign, events.StepLatex, events.StepCompile} {
		if !steps[st] {
			t.Errorf("no running event at %s: %s", st, describe(evs))
		}
	}
}

// completedJob submits a job for user and waits until it completes.
func completedJob(ctx context.Context, t *testing.T, c *client.Client, user string) (string, []events.StatusEvent) {
	t.Helper()
	id, err := c.Submit(ctx, events.JobRequest{UserID: user, Prompt: prompt})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	ch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	evs := collect(ctx, t, ch)
	checkCompleted(t, id, evs)
	return id, evs
}

// followRun collects the events of job id from revision rev to the end of its run.
func followRun(ctx context.Context, t *testing.T, c *client.Client, id string, rev uint64) []events.StatusEvent {
	t.Helper()
	ch, err := c.WatchFrom(ctx, id, rev)
	if err != nil {
		t.Fatalf("WatchFrom: %v", err)
	}
	evs := collect(ctx, t, ch)
	if evs[0].Revision < rev {
		t.Fatalf("WatchFrom(%d) delivered %s", rev, describe(evs))
	}
	return evs
}

// checkControlError checks that err is a refusal of the service with code and a
// message containing want, matched by the sentinel of its class.
func checkControlError(t *testing.T, err error, code int, want string) {
	t.Helper()
	var ce *events.ControlError
	if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Message, want) {
		t.Fatalf("error %v, want a control error %d saying %q", err, code, want)
	}
	sentinel := map[int]error{events.CodeBadRequest: events.ErrInvalid, events.CodeNotFound: events.ErrNotFound,
		events.CodeConflict: events.ErrConflict}[code]
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) is false", err, sentinel)
	}
}
