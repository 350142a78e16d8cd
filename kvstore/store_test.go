package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

func setup(t *testing.T) (*kvstore.Store, *metrics.Metrics, context.Context) {
	t.Helper()
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	m := metrics.New(prometheus.NewRegistry())
	st, err := kvstore.New(ctx, s.JS, m)
	if err != nil {
		t.Fatalf("kvstore.New: %v", err)
	}
	return st, m, ctx
}

func TestCreateGet(t *testing.T) {
	st, _, ctx := setup(t)
	job := &events.Job{ID: "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", UserID: "u1", Status: events.StatusPending, Prompt: "p"}
	rev, err := st.Create(ctx, job)
	if err != nil || rev == 0 {
		t.Fatalf("Create: rev %d err %v", rev, err)
	}
	if _, err := st.Create(ctx, &events.Job{ID: job.ID}); !errors.Is(err, kvstore.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	got, gotRev, err := st.Get(ctx, job.ID)
	if err != nil || gotRev != rev || got.UserID != "u1" || got.CreatedAt.IsZero() {
		t.Fatalf("Get: %+v rev %d err %v", got, gotRev, err)
	}
	for name, id := range map[string]string{"unknown": "6a1d1f9e-0000-4000-8000-000000000000", "invalid key": "a b*"} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := st.Get(ctx, id); !errors.Is(err, kvstore.ErrNotFound) {
				t.Fatalf("Get(%q): %v, want ErrNotFound", id, err)
			}
		})
	}
}

func TestUpdateConcurrentLosesNothing(t *testing.T) {
	st, m, ctx := setup(t)
	const writers = 100
	id := "9d7c7b36-2f6d-4a57-8d3b-7a4bb0d1c001"
	if _, err := st.Create(ctx, &events.Job{ID: id, UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := st.Update(ctx, id, func(j *events.Job) error {
				j.RetryCount++
				j.Tags = append(j.Tags, string(rune('A'+i%26)))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	got, _, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.RetryCount != writers || len(got.Tags) != writers {
		t.Fatalf("after %d concurrent updates: retry_count %d, %d tags", writers, got.RetryCount, len(got.Tags))
	}
	if testutil.ToFloat64(m.KVCASConflicts.WithLabelValues(kvstore.BucketJobs)) == 0 {
		t.Fatalf("100 concurrent writers caused no counted CAS conflict")
	}
}

func TestUpdateFunctionErrors(t *testing.T) {
	st, _, ctx := setup(t)
	id := "1c7c7b36-2f6d-4a57-8d3b-7a4bb0d1c002"
	rev0, err := st.Create(ctx, &events.Job{ID: id, UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"no change", kvstore.ErrNoChange, nil},
		{"refused", boom, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rev, err := st.Update(ctx, id, func(j *events.Job) error { j.Prompt = "x"; return tc.err })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if rev != rev0 {
				t.Fatalf("revision moved to %d; nothing should be written", rev)
			}
		})
	}
	if _, _, err := st.Update(ctx, "5c7c7b36-2f6d-4a57-8d3b-7a4bb0d1c003", func(*events.Job) error { return nil }); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("Update unknown: %v", err)
	}
}

func TestConverseCreatesAndAppends(t *testing.T) {
	st, _, ctx := setup(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := st.Converse(ctx, "c1", "j1", func(c *events.Conversation) error {
				c.Messages = append(c.Messages, events.Message{Role: "user", Content: "m", Stage: events.StageDesign, Seq: uint64(i + 1)})
				return nil
			})
			if err != nil {
				t.Errorf("Converse: %v", err)
			}
		}()
	}
	wg.Wait()
	c, _, err := st.Conversation(ctx, "c1")
	if err != nil || len(c.Messages) != 20 || c.JobID != "j1" {
		t.Fatalf("conversation %+v err %v", c, err)
	}
}

// Update with From writes from the caller's value when it is current, and
// otherwise decides on the stored value: a stale hint never makes fn act on old
// state.
func TestUpdateFrom(t *testing.T) {
	st, m, ctx := setup(t)
	id := "3c1b2a10-8b0a-4a53-9f53-3f2f3c1e2a10"
	rev, err := st.Create(ctx, &events.Job{ID: id, UserID: "u", Status: events.StatusRunning, Message: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	held, _, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("current hint", func(t *testing.T) {
		j, newRev, err := st.Update(ctx, id, func(j *events.Job) error { j.Message = "v2"; return nil }, kvstore.From(held, rev))
		if err != nil || newRev != rev+1 || j.Message != "v2" {
			t.Fatalf("Update From: %q rev %d err %v", j.Message, newRev, err)
		}
		if held.Message != "v1" {
			t.Fatalf("the hint was changed: %q", held.Message)
		}
		held, rev = j, newRev
	})
	t.Run("stale hint is re-read", func(t *testing.T) {
		// Someone else aborts the job after the caller's last write.
		if _, _, err := st.Update(ctx, id, func(j *events.Job) error { j.Status = events.StatusAborted; return nil }); err != nil {
			t.Fatal(err)
		}
		var sawAborted bool
		_, _, err := st.Update(ctx, id, func(j *events.Job) error {
			if j.Status == events.StatusAborted {
				sawAborted = true
				return kvstore.ErrNoChange
			}
			j.Message = "overwrote the abort"
			return nil
		}, kvstore.From(held, rev))
		if err != nil || !sawAborted {
			t.Fatalf("Update From on a stale hint: err %v, saw the abort %v", err, sawAborted)
		}
		got, _, err := st.Get(ctx, id)
		if err != nil || got.Status != events.StatusAborted || got.Message == "overwrote the abort" {
			t.Fatalf("job after a stale hint: %+v err %v", got, err)
		}
	})
	t.Run("refusal on a stale hint is re-checked", func(t *testing.T) {
		cur, curRev, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		stale := *cur
		stale.Status = events.StatusCompleted // what the caller wrongly believes
		refuse := errors.New("refused")
		j, _, err := st.Update(ctx, id, func(j *events.Job) error {
			if j.Status == events.StatusCompleted {
				return refuse
			}
			j.Message = "written"
			return nil
		}, kvstore.From(&stale, curRev-1))
		if err != nil || j.Message != "written" {
			t.Fatalf("Update From refused on the hint's state: err %v", err)
		}
	})
	if n := testutil.ToFloat64(m.KVCASConflicts.WithLabelValues(kvstore.BucketJobs)); n != 0 {
		t.Fatalf("a stale hint counted %v CAS conflicts, want 0", n)
	}
}

// The first turn creates the conversation; later turns update it.
func TestConverseCreatesThenUpdates(t *testing.T) {
	st, _, ctx := setup(t)
	id := "4d1b2a10-8b0a-4a53-9f53-3f2f3c1e2a10"
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, _, err := st.Converse(ctx, id, id, func(c *events.Conversation) error {
				c.Messages = append(c.Messages, events.Message{Role: "user", Content: string(rune('a' + i))})
				return nil
			})
			if err != nil {
				t.Errorf("Converse: %v", err)
			}
		})
	}
	wg.Wait()
	c, _, err := st.Conversation(ctx, id)
	if err != nil || len(c.Messages) != 8 || c.JobID != id || c.CreatedAt.IsZero() {
		t.Fatalf("conversation after 8 concurrent first turns: %+v err %v", c, err)
	}
}

func TestEachUnfinishedJobSkipsFinishedOnes(t *testing.T) {
	st, _, ctx := setup(t)
	want := map[string]bool{}
	for i, s := range []events.Status{events.StatusPending, events.StatusCompleted, events.StatusRunning,
		events.StatusAborted, events.StatusWaitingManual, events.StatusError, events.StatusWaitingAIFix} {
		id := fmt.Sprintf("5e1b2a10-8b0a-4a53-9f53-3f2f3c1e2a1%d", i)
		if _, err := st.Create(ctx, &events.Job{ID: id, Status: s}); err != nil {
			t.Fatal(err)
		}
		if !events.FinishedStatus(s) {
			want[id] = true
		}
	}
	got := map[string]bool{}
	err := st.EachUnfinishedJob(ctx, func(id string, j *events.Job, _ uint64, err error) error {
		if err != nil || events.FinishedStatus(j.Status) {
			t.Errorf("job %s: %v, status %s", id, err, j.Status)
		}
		got[id] = true
		return nil
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("scan saw %v (err %v), want %v", got, err, want)
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("unfinished job %s not seen", id)
		}
	}
}
