package consumers_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// TestListPagesTenThousandJobs pages through a bucket of 10,000 jobs (each with
// 4 KiB of LaTeX): every job once, newest first, the same total on every page,
// the filters, and a job created after the index loaded listed at once. It logs
// how long the first list (which loads the index) and a later page took.
func TestListPagesTenThousandJobs(t *testing.T) {
	t.Parallel()
	const n = 10000
	e := newIdleEnv(t, broker.Resources{}, fakellm.Script(fakellm.Reply{Content: "unused"}))
	pipe := e.newPlane()

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tex := strings.Repeat("% filler line of a worksheet\n", 4096/29)
	statuses := []events.Status{events.StatusCompleted, events.StatusWaitingManual, events.StatusAborted, events.StatusError}
	prios := []events.Priority{events.PriorityHigh, events.PriorityNormal, events.PriorityLow}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				j := &events.Job{ID: uuid.NewString(), UserID: fmt.Sprintf("user-%d", i%10), Status: statuses[i%4],
					CurrentStep: events.StepDone, Prompt: fmt.Sprintf("Worksheet number %d about Fractions", i), Latex: tex,
					Priority: prios[i%3], CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base}
				if i%100 == 0 {
					j.BatchID = "batch-a"
				}
				if _, err := e.store.Create(e.ctx, j); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	start := time.Now()
	seen := map[string]bool{}
	var prev *events.JobSummary
	q := events.ListQuery{Limit: events.MaxListLimit}
	pages := 0
	for {
		t0 := time.Now()
		reply, err := pipe.List(e.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 {
			t.Logf("first list of %d jobs (loads the index): %v", n, time.Since(t0))
		} else if pages == 1 {
			t.Logf("a later page of %d: %v", len(reply.Jobs), time.Since(t0))
		}
		pages++
		if reply.Total != n {
			t.Fatalf("page %d: total %d, want %d", pages, reply.Total, n)
		}
		for i := range reply.Jobs {
			j := &reply.Jobs[i]
			if seen[j.JobID] {
				t.Fatalf("job %s listed twice", j.JobID)
			}
			seen[j.JobID] = true
			if prev != nil && !prev.CreatedAt.After(j.CreatedAt) {
				t.Fatalf("not newest first: %v then %v", prev.CreatedAt, j.CreatedAt)
			}
			prev = j
		}
		if reply.Next == "" {
			break
		}
		q.Before = reply.Next
	}
	t.Logf("paged through %d jobs in %d pages: %v", len(seen), pages, time.Since(start))
	if len(seen) != n || pages != n/events.MaxListLimit {
		t.Fatalf("listed %d jobs in %d pages", len(seen), pages)
	}

	filters := []struct {
		name string
		q    events.ListQuery
		want int
	}{
		{"status", events.ListQuery{Status: events.StatusAborted}, n / 4},
		{"user", events.ListQuery{UserID: "user-3"}, n / 10},
		{"priority", events.ListQuery{Priority: events.PriorityLow}, n / 3},
		{"batch", events.ListQuery{BatchID: "batch-a"}, n / 100},
		{"text, any case", events.ListQuery{Text: "NUMBER 12 "}, 1},
		{"all at once", events.ListQuery{Status: events.StatusCompleted, UserID: "user-0", Text: "fractions"}, n / 20},
	}
	for _, f := range filters {
		reply, err := pipe.List(e.ctx, f.q)
		if err != nil {
			t.Fatal(err)
		}
		if reply.Total != f.want {
			t.Errorf("%s: total %d, want %d", f.name, reply.Total, f.want)
		}
	}

	id := uuid.NewString()
	if _, err := e.store.Create(e.ctx, &events.Job{ID: id, UserID: "new", Status: events.StatusPending, CurrentStep: events.StepDesign,
		Prompt: "just now", CreatedAt: base.Add(n * time.Second)}); err != nil {
		t.Fatal(err)
	}
	reply, err := pipe.List(e.ctx, events.ListQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Jobs) != 1 || reply.Jobs[0].JobID != id || reply.Total != n+1 {
		t.Fatalf("a job created after the index loaded: %+v", reply)
	}
}

// A cursor that is not one from a reply is a clear 400.
func TestListRefusesBadCursor(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"x", "12_notauuid", "abc_" + uuid.NewString()} {
		q := events.ListQuery{Before: c}
		if err := q.Validate(); events.CodeOf(err) != events.CodeBadRequest {
			t.Errorf("before %q: %v", c, err)
		}
	}
}
