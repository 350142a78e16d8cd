package consumers_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// batchOf is a batch of n requests of user u, one prompt each.
func batchOf(id string, n int) events.BatchRequest {
	b := events.BatchRequest{BatchID: id}
	for i := range n {
		b.Jobs = append(b.Jobs, events.JobRequest{UserID: "u1", Prompt: "fractions, grade " + string(rune('1'+i))})
	}
	return b
}

func TestSubmitBatchRecordsThenCreatesJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""))
	b := batchOf(uuid.NewString(), 3)
	b.Jobs[2].JobID = uuid.NewString()
	reply, err := e.plane.SubmitBatch(e.ctx, b)
	if err != nil {
		t.Fatalf("submit batch: %v", err)
	}
	rec, _, err := e.store.Batch(e.ctx, b.BatchID)
	if err != nil || rec.ID != b.BatchID || !slices.Equal(rec.JobIDs, reply.JobIDs) || rec.CreatedAt.IsZero() {
		t.Fatalf("batch record %+v (%v), want the reply's jobs %v", rec, err, reply.JobIDs)
	}
	if reply.JobIDs[2] != b.Jobs[2].JobID || reply.JobIDs[0] != events.BatchJobID(b.BatchID, 0) {
		t.Fatalf("job ids %v: want the request's own id, else the one derived from the batch", reply.JobIDs)
	}
	for i, id := range reply.JobIDs {
		if j := e.job(id); j.BatchID != b.BatchID || j.Prompt != b.Jobs[i].Prompt {
			t.Fatalf("job %d: %+v, want batch %s asking %q", i, j, b.BatchID, b.Jobs[i].Prompt)
		}
		e.waitStatus(id, events.StatusCompleted)
	}
	s, err := e.plane.Batch(e.ctx, b.BatchID)
	if err != nil || !s.Done || !maps.Equal(s.Counts, map[events.Status]int{events.StatusCompleted: 3}) {
		t.Fatalf("status %+v (%v), want done with 3 completed", s, err)
	}

	// A job id the batch names that another request has: nothing is written.
	other := batchOf(uuid.NewString(), 2)
	other.Jobs[1].JobID, other.Jobs[1].Prompt = reply.JobIDs[2], "something else"
	if _, err := e.plane.SubmitBatch(e.ctx, other); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("batch naming a taken job id: %v, want ErrConflict", err)
	}
	if _, _, err := e.store.Batch(e.ctx, other.BatchID); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("the refused batch was recorded: %v", err)
	}
	if _, _, err := e.store.Get(e.ctx, events.BatchJobID(other.BatchID, 0)); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("a job of the refused batch was created: %v", err)
	}
	if _, err := e.plane.Batch(e.ctx, other.BatchID); !errors.Is(err, events.ErrNotFound) || events.CodeOf(err) != 404 {
		t.Fatalf("status of an unknown batch: %v, want a 404", err)
	}
}

// TestSubmitBatchResendCompletesACrashedSubmit: a process died after storing the
// batch record and one job. The batch's status shows the others missing; its
// watch goes on once the batch is sent again, which creates only those.
func TestSubmitBatchResendCompletesACrashedSubmit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""))
	b := batchOf(uuid.NewString(), 3)
	// What the dead process wrote: the record, as SubmitBatch writes it, and job 0.
	crashed := b
	crashed.Jobs = slices.Clone(b.Jobs)
	ids, err := crashed.Assign()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := crashed.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateBatch(e.ctx, &kvstore.Batch{ID: b.BatchID, JobIDs: ids, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.plane.Submit(e.ctx, crashed.Jobs[0]); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ids[0], events.StatusCompleted)

	s, err := e.plane.Batch(e.ctx, b.BatchID)
	want := map[events.Status]int{events.StatusCompleted: 1, events.StatusMissing: 2}
	if err != nil || s.Done || !maps.Equal(s.Counts, want) {
		t.Fatalf("status of the crashed batch %+v (%v), want %v and not done", s, err, want)
	}
	follow, err := e.plane.FollowBatch(e.ctx, b.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	if first := <-follow; len(first.Jobs) != 3 || !maps.Equal(first.Counts, want) {
		t.Fatalf("first status followed %+v", first)
	}

	reply, err := e.plane.SubmitBatch(e.ctx, b)
	if err != nil || !slices.Equal(reply.JobIDs, ids) {
		t.Fatalf("resend: %+v (%v), want the jobs %v", reply, err, ids)
	}
	var last events.BatchStatus
	for s := range follow {
		last = s
	}
	if !last.Done || !maps.Equal(last.Counts, map[events.Status]int{events.StatusCompleted: 3}) {
		t.Fatalf("the watch ended at %+v, want done with 3 completed", last)
	}
	for _, id := range ids[1:] {
		if j := e.job(id); j.BatchID != b.BatchID {
			t.Fatalf("job %s completed by the resend is in batch %q", id, j.BatchID)
		}
	}
	if got := e.llm.CallsFor("design"); got != 3 {
		t.Errorf("design calls = %d, want 3: the job created before the crash runs once", got)
	}

	// The batch id with other jobs: one changed, or one more, whose job would
	// not be in the batch's record.
	changed, longer := b, b
	changed.Jobs = slices.Clone(b.Jobs)
	changed.Jobs[1].Prompt = "decimals"
	longer.Jobs = append(slices.Clone(b.Jobs), events.JobRequest{UserID: "u1", Prompt: "percentages"})
	for _, other := range []events.BatchRequest{changed, longer} {
		if _, err := e.plane.SubmitBatch(e.ctx, other); !errors.Is(err, events.ErrConflict) {
			t.Fatalf("the batch id with other jobs: %v, want ErrConflict", err)
		}
	}
	if _, _, err := e.store.Get(e.ctx, events.BatchJobID(b.BatchID, 3)); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("the job added to a recorded batch was created: %v", err)
	}
}
