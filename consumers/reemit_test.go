package consumers_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// A worker wrote "completed" and died before publishing the event: the
// redelivered compile ticket is stale, and it publishes the missing event.
func TestRedeliveredStaleTicketRepublishesLostEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.pipe.Stop(stopCtx)
	cancel()

	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusCompleted, CurrentStep: events.StepDone,
		Seq: 3, PDFURL: "/jobs/" + id + "/pdf", Message: "PDF ready"})
	e.ticket(events.Ticket{JobID: id, Stage: events.StageCompile, Seq: 3}, "compile-3")

	// The dead worker's delivery: fetched, never acked; the server redelivers it.
	cons, err := e.nats.JS.Consumer(e.ctx, events.StreamJobs, string(events.StageCompile))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fetched := 0
	for msg := range batch.Messages() {
		fetched++
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	if fetched != 1 {
		t.Fatalf("fetched %d tickets, want 1", fetched)
	}
	if n := len(e.eventsOf(id)); n != 0 {
		t.Fatalf("%d events before the redelivery, want 0 (the event was lost)", n)
	}

	e.startPipeline()
	evs := e.waitStatus(id, events.StatusCompleted)
	e.waitIdle()
	if n := len(e.eventsOf(id)); n != 1 || evs[0].PDFURL == "" {
		t.Fatalf("want exactly the one lost completed event, got:%s", describe(e.eventsOf(id)))
	}
	waitEmpty(t, e)
}
