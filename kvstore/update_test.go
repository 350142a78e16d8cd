package kvstore_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// AtRevision writes only on the job at the given revision: of several writers
// on one revision exactly one succeeds, the others are refused with a
// *events.StaleError naming the current revision, and a revision the job was
// never at (0, a later one) is refused without a write.
func TestUpdateAtRevision(t *testing.T) {
	st, _, ctx := setup(t)
	id := uuid.NewString()
	base, err := st.Create(ctx, &events.Job{ID: id, UserID: "u", Status: events.StatusPending, CurrentStep: events.StepDesign})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won, stale atomic.Int32
	for range 8 {
		wg.Go(func() {
			_, _, err := st.Update(ctx, id, func(j *events.Job) error { j.RetryCount++; return nil }, kvstore.AtRevision(base))
			var se *events.StaleError
			switch {
			case err == nil:
				won.Add(1)
			case errors.As(err, &se) && errors.Is(err, events.ErrStale) && se.IfRevision == base && se.Revision == base+1:
				stale.Add(1)
			default:
				t.Errorf("update at revision %d: %v", base, err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || stale.Load() != 7 {
		t.Fatalf("%d writes and %d refusals on one revision, want 1 and 7", won.Load(), stale.Load())
	}
	for name, rev := range map[string]uint64{"revision 0": 0, "a later revision": base + 5, "the old revision": base} {
		t.Run(name, func(t *testing.T) {
			called := false
			_, _, err := st.Update(ctx, id, func(j *events.Job) error { called = true; j.RetryCount = 100; return nil }, kvstore.AtRevision(rev))
			if !errors.Is(err, events.ErrStale) || events.RevisionOf(err) != base+1 || called {
				t.Fatalf("update at revision %d: err %v (revision %d), fn called %v", rev, err, events.RevisionOf(err), called)
			}
			j, cur, err := st.Get(ctx, id)
			if err != nil || cur != base+1 || j.RetryCount != 1 {
				t.Fatalf("job after a refused update: retries %d rev %d err %v", j.RetryCount, cur, err)
			}
		})
	}
}

// Describe writes description, tags and the meta bookkeeping, keeping the
// revision of the job's last state change in EventRev, and refuses, writing
// nothing, a function that changes anything else.
func TestDescribe(t *testing.T) {
	st, _, ctx := setup(t)
	id := uuid.NewString()
	lease := &events.Lease{Owner: "w1", ExpiresAt: time.Now().Add(time.Minute).UTC()}
	created, err := st.Create(ctx, &events.Job{ID: id, UserID: "u", Status: events.StatusRunning, CurrentStep: events.StepCompile,
		Stage: events.StageCompile, Seq: 3, LatexSeq: 2, Lease: lease, Imported: &events.Imported{Extra: map[string]string{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	described, rev, err := st.Describe(ctx, id, func(j *events.Job) error {
		j.Description, j.Tags, j.MetaSeq, j.MetaError = "fractions", []string{"math"}, j.LatexSeq, ""
		return nil
	})
	if err != nil || described.Description != "fractions" || described.MetaSeq != 2 || described.EventRev != created {
		t.Fatalf("Describe: %+v err %v, want the description with EventRev %d", described, err, created)
	}

	for _, tc := range []struct {
		name string
		fn   func(*events.Job)
	}{
		{"status", func(j *events.Job) { j.Status = events.StatusCompleted }},
		{"step", func(j *events.Job) { j.CurrentStep = events.StepDone }},
		{"stage", func(j *events.Job) { j.Stage = "" }},
		{"seq", func(j *events.Job) { j.Seq++ }},
		{"lease", func(j *events.Job) { j.Lease = nil }},
		{"lease expiry", func(j *events.Job) { j.Lease.ExpiresAt = j.Lease.ExpiresAt.Add(time.Hour) }},
		{"event revision", func(j *events.Job) { j.EventRev = 99 }},
		{"latex", func(j *events.Job) { j.Latex = `\evil` }},
		{"latex seq", func(j *events.Job) { j.LatexSeq = 9 }},
		{"imported extra", func(j *events.Job) { j.Imported.Extra["k"] = "w" }},
		{"status beside a description", func(j *events.Job) { j.Description, j.Status = "x", events.StatusAborted }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := st.Describe(ctx, id, func(j *events.Job) error { tc.fn(j); return nil })
			if !errors.Is(err, kvstore.ErrNotMeta) {
				t.Fatalf("Describe changing the %s: %v, want ErrNotMeta", tc.name, err)
			}
			j, cur, err := st.Get(ctx, id)
			if err != nil || cur != rev || j.Status != events.StatusRunning || j.Description != "fractions" || j.Imported.Extra["k"] != "v" {
				t.Fatalf("job after a refused Describe: %+v rev %d (want %d) err %v", j, cur, rev, err)
			}
		})
	}
}
