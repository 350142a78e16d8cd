package kvstore_test

import (
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

func activeRecords(t *testing.T, st *kvstore.Store) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	ctx := t.Context()
	if err := st.EachActive(ctx, func(r kvstore.ActiveRecord) error { got[r.ID] = r.Rev; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// The active index follows a job: recorded when it is created with a stage,
// removed when it loses it, recorded again when it is reopened; a removal at an
// old revision leaves a newer record alone.
func TestActiveIndexFollowsTheJob(t *testing.T) {
	st, _, ctx := setup(t)
	id := "6a1b2a10-8b0a-4a53-9f53-3f2f3c1e2a10"
	settledID := "6a1b2a10-8b0a-4a53-9f53-3f2f3c1e2a11"
	if _, err := st.Create(ctx, &events.Job{ID: id, Status: events.StatusPending, Stage: events.StageDesign, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, &events.Job{ID: settledID, Status: events.StatusError, CurrentStep: events.StepPrompt}); err != nil {
		t.Fatal(err)
	}
	j, _, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	recs := activeRecords(t, st)
	if recs[id] == 0 || recs[id] != j.ActiveRev {
		t.Fatalf("records %v, job's record revision %d", recs, j.ActiveRev)
	}
	if _, ok := recs[settledID]; ok {
		t.Fatalf("a job created without a stage is indexed: %v", recs)
	}
	first := j.ActiveRev

	// It completes: the record goes (in the background).
	if _, _, err := st.Update(ctx, id, func(j *events.Job) error {
		j.Status, j.Stage = events.StatusCompleted, ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for activeRecords(t, st)[id] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the record of a completed job stayed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A refine reopens it: a new record, which a late removal of the first leaves.
	j, _, err = st.Update(ctx, id, func(j *events.Job) error {
		j.Status, j.Stage, j.Seq = events.StatusPending, events.StageDesign, j.Seq+1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if j.ActiveRev == 0 || j.ActiveRev == first {
		t.Fatalf("reopened job's record revision %d (first %d)", j.ActiveRev, first)
	}
	if err := st.Deactivate(ctx, id, first); err != nil {
		t.Fatalf("removing a gone record: %v", err)
	}
	if got := activeRecords(t, st)[id]; got != j.ActiveRev {
		t.Fatalf("record at %d after a late removal, want %d", got, j.ActiveRev)
	}
}
