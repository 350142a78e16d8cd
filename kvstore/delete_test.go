package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Delete is a compare-and-swap: a job written since it was read is kept, and of
// two deletions at the same revision only the first succeeds.
func TestDeleteChecksTheRevision(t *testing.T) {
	st, _, ctx := setup(t)
	const id = "3c1b7a9e-5d2f-4e8a-9b6c-0d1e2f3a4b5c"
	read, err := st.Create(ctx, &events.Job{ID: id, UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	_, written, err := st.Update(ctx, id, func(j *events.Job) error { j.Prompt = "changed"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, id, read); !errors.Is(err, kvstore.ErrConflict) {
		t.Fatalf("delete at the stale revision: %v, want ErrConflict", err)
	}
	if j, _, err := st.Get(ctx, id); err != nil || j.Prompt != "changed" {
		t.Fatalf("job after a refused delete: %+v %v", j, err)
	}
	if err := st.Delete(ctx, id, written); err != nil {
		t.Fatalf("delete at the current revision: %v", err)
	}
	if _, _, err := st.Get(ctx, id); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if err := st.Delete(ctx, id, written); !errors.Is(err, kvstore.ErrConflict) {
		t.Fatalf("second delete: %v, want ErrConflict", err)
	}
	if err := st.Delete(ctx, id, 0); err == nil {
		t.Fatal("delete without a revision succeeded")
	}
}

func TestDeleteConversation(t *testing.T) {
	st, _, ctx := setup(t)
	ids := []string{"c-1", "c-2"}
	revs := map[string]uint64{}
	for _, id := range ids {
		_, rev, err := st.Converse(ctx, id, "job", func(c *events.Conversation) error {
			c.Messages = append(c.Messages, events.Message{Role: "user", Content: "hi"})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		revs[id] = rev
	}
	seen := map[string]uint64{}
	err := st.EachConversation(ctx, func(id string, rev uint64, updated time.Time) error {
		if time.Since(updated) > time.Minute || updated.After(time.Now()) {
			t.Errorf("conversation %s last written at %s", id, updated)
		}
		seen[id] = rev
		return nil
	})
	if err != nil || len(seen) != 2 || seen["c-1"] != revs["c-1"] || seen["c-2"] != revs["c-2"] {
		t.Fatalf("scan saw %v (err %v), want %v", seen, err, revs)
	}
	stale := revs["c-1"]
	_, rev, err := st.Converse(ctx, "c-1", "job", func(c *events.Conversation) error {
		c.Messages = append(c.Messages, events.Message{Role: "assistant", Content: "hello"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	revs["c-1"] = rev
	if err := st.DeleteConversation(ctx, "c-1", stale); !errors.Is(err, kvstore.ErrConflict) {
		t.Fatalf("delete at a stale revision: %v, want ErrConflict", err)
	}
	if err := st.DeleteConversation(ctx, "c-1", revs["c-1"]); err != nil {
		t.Fatal(err)
	}
	for range 2 { // at any revision; a second time is no error
		if err := st.DeleteConversation(ctx, "c-2", 0); err != nil {
			t.Fatal(err)
		}
	}
	seen = map[string]uint64{}
	if err := st.EachConversation(ctx, func(id string, rev uint64, _ time.Time) error { seen[id] = rev; return nil }); err != nil || len(seen) != 0 {
		t.Fatalf("scan after deletes saw %v (err %v), want none", seen, err)
	}
	if _, _, err := st.Conversation(ctx, "c-2"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
}

// PurgeMarkers leaves nothing of a deleted key in the bucket's stream, and a
// key written again after its deletion keeps its new value.
func TestPurgeMarkers(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := kvstore.New(ctx, s.JS, metrics.New(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	const gone, back = "5e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b", "6f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b3c"
	for _, id := range []string{gone, back} {
		rev, err := st.Create(ctx, &events.Job{ID: id, UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, id, rev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Create(ctx, &events.Job{ID: back, UserID: "again"}); err != nil {
		t.Fatal(err)
	}
	n, err := st.PurgeMarkers(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d markers (err %v), want 1", n, err)
	}
	if j, _, err := st.Get(ctx, back); err != nil || j.UserID != "again" {
		t.Fatalf("key written after its deletion: %+v %v", j, err)
	}
	stream, err := s.JS.Stream(ctx, "KV_"+kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil || len(info.State.Subjects) != 1 || info.State.Subjects["$KV."+kvstore.BucketJobs+"."+gone] != 0 {
		t.Fatalf("stream after the purge: messages on %v (err %v), want none of %s", info.State.Subjects, err, gone)
	}
	if _, _, err := st.Get(ctx, gone); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
	if n, err := st.PurgeMarkers(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second purge: %d markers (err %v), want none", n, err)
	}
}
