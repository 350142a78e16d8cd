package client_test

import (
	"context"
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
