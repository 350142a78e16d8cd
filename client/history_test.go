package client_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

// History returns every run of a job, each event once, in revision order: the
// events Watch saw of the first run, then those of a second run (an edit that
// does not compile), and nothing of another job's.
func TestHistory(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	id, first := completedJob(ctx, t, c, "ada")
	completedJob(ctx, t, c, "bob")
	j, err := c.EditLatex(ctx, id, brokenLatex)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.WatchFrom(ctx, id, j.Revision)
	if err != nil {
		t.Fatal(err)
	}
	second := collect(ctx, t, ch)
	if last := second[len(second)-1]; last.Status != events.StatusWaitingManual {
		t.Fatalf("edit ended %s, want waiting_manual", last.Status)
	}

	got, err := c.History(ctx, id)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	want := append(append([]events.StatusEvent{}, first...), second...)
	if len(got) != len(want) {
		t.Fatalf("History: %d events, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].JobID != id || got[i].Revision != want[i].Revision || got[i].Status != want[i].Status || got[i].Step != want[i].Step {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	if _, err := c.History(ctx, uuid.NewString()); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("History of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := c.History(ctx, "job-1"); !errors.Is(err, client.ErrInvalidJobID) {
		t.Fatalf("History of a bad id: %v, want ErrInvalidJobID", err)
	}
}
