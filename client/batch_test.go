package client_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

func TestSubmitBatchAndWatch(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	b := events.BatchRequest{Jobs: []events.JobRequest{
		{UserID: "ada", Prompt: "fractions, grade 5"},
		{UserID: "ada", Prompt: "decimals, grade 6"},
		{UserID: "bob", Prompt: "percentages, grade 7"},
	}}
	reply, err := c.SubmitBatch(ctx, b)
	if err != nil {
		t.Fatalf("submit batch: %v", err)
	}
	if _, err := uuid.Parse(reply.BatchID); err != nil || len(reply.JobIDs) != 3 {
		t.Fatalf("reply %+v: want a batch id the client chose and 3 jobs", reply)
	}
	ch, err := c.WatchBatch(ctx, reply.BatchID)
	if err != nil {
		t.Fatalf("watch batch: %v", err)
	}
	var got []events.BatchStatus
	for st := range ch {
		got = append(got, st)
	}
	if len(got) == 0 {
		t.Fatalf("watch ended with nothing (ctx err %v)", ctx.Err())
	}
	first, last := got[0], got[len(got)-1]
	if len(first.Jobs) != 3 || first.Jobs[1].JobID != reply.JobIDs[1] {
		t.Fatalf("first status %+v, want every job in order", first)
	}
	if !last.Done || !maps.Equal(last.Counts, map[events.Status]int{events.StatusCompleted: 3}) {
		t.Fatalf("watch ended at %+v (ctx err %v), want done with 3 completed", last, ctx.Err())
	}
	now, err := c.Batch(ctx, reply.BatchID)
	if err != nil || !now.Done || now.Total != 3 {
		t.Fatalf("batch status %+v (%v)", now, err)
	}
	for _, j := range now.Jobs {
		job, err := c.Get(ctx, j.JobID)
		if err != nil || job.BatchID != reply.BatchID || job.Revision != j.Revision {
			t.Fatalf("job %+v of the status: %+v (%v)", j, job, err)
		}
	}
	// A watch of a done batch is its status alone.
	ch, err = c.WatchBatch(ctx, reply.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	var again []events.BatchStatus
	for st := range ch {
		again = append(again, st)
	}
	if len(again) != 1 || !again[0].Done {
		t.Fatalf("watch of a done batch: %+v", again)
	}

	// Sent again as it is, the batch is the same jobs.
	b.BatchID = reply.BatchID
	if r, err := c.SubmitBatch(ctx, b); err != nil || !slices.Equal(r.JobIDs, reply.JobIDs) {
		t.Fatalf("resend: %+v (%v), want %v", r, err, reply.JobIDs)
	}
	b.Jobs[0].Prompt = "something else"
	if _, err := c.SubmitBatch(ctx, b); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("the batch id with other jobs: %v, want a 409", err)
	}
	_, err = c.SubmitBatch(ctx, events.BatchRequest{Jobs: []events.JobRequest{{UserID: "ada", Prompt: "p"}, {UserID: "ada"}}})
	if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "jobs[1]: prompt is required") {
		t.Fatalf("batch with a bad request: %v, want a 400 naming jobs[1]", err)
	}
	if _, err := c.Batch(ctx, uuid.NewString()); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("unknown batch: %v", err)
	}
	if _, err := c.WatchBatch(ctx, uuid.NewString()); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("watch of an unknown batch: %v", err)
	}
}
