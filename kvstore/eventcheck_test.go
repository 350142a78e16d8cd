package kvstore_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestJobAt checks the revisions a status event may name: a state the job was
// in (now or within the kept history) is returned as it was; a later revision,
// another job's revision, a write that changed no state and a revision the
// history no longer reaches are refused, each with its own error.
func TestJobAt(t *testing.T) {
	st, _, ctx := setup(t)
	id, other := uuid.NewString(), uuid.NewString()
	rev0, err := st.Create(ctx, &events.Job{ID: id, UserID: "u", Status: events.StatusPending, CurrentStep: events.StepDesign})
	if err != nil {
		t.Fatal(err)
	}
	otherRev, err := st.Create(ctx, &events.Job{ID: other, UserID: "u", Status: events.StatusPending, CurrentStep: events.StepDesign})
	if err != nil {
		t.Fatal(err)
	}
	set := func(status events.Status, step events.Step) uint64 {
		t.Helper()
		_, rev, err := st.Update(ctx, id, func(j *events.Job) error {
			j.Status, j.CurrentStep, j.EventRev = status, step, 0
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	running := set(events.StatusRunning, events.StepDesign)
	completed := set(events.StatusCompleted, events.StepDone)
	// A description written after the final state: no change of state, so the
	// completed event keeps its revision.
	_, described, err := st.Describe(ctx, id, func(j *events.Job) error {
		j.Description = "fractions"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		rev    uint64
		status events.Status
		err    error
	}{
		{"current state behind a description", completed, events.StatusCompleted, nil},
		{"earlier state from the history", running, events.StatusRunning, nil},
		{"first state from the history", rev0, events.StatusPending, nil},
		{"the description's write", described, "", kvstore.ErrNotAtRevision},
		{"a later revision", described + 5, "", kvstore.ErrNotAtRevision},
		{"another job's revision", otherRev, "", kvstore.ErrNotAtRevision},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := st.JobAt(ctx, id, tc.rev)
			if !errors.Is(err, tc.err) || (err == nil && (j.Status != tc.status || j.ID != id)) {
				t.Fatalf("JobAt(%d) = %+v, %v; want status %q, error %v", tc.rev, j, err, tc.status, tc.err)
			}
		})
	}
	if _, err := st.JobAt(ctx, uuid.NewString(), 1); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("JobAt of an unknown job: %v, want ErrNotFound", err)
	}
	for range kvstore.JobsHistory {
		set(events.StatusPending, events.StepDesign)
	}
	if _, err := st.JobAt(ctx, id, running); !errors.Is(err, kvstore.ErrPastHistory) {
		t.Fatalf("JobAt past the history: %v, want ErrPastHistory", err)
	}
}
