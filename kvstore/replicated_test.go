package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestReadsSeeOwnWritesOnR3 writes through a client on every node of a 3-node
// cluster and reads right after each acknowledged write. Direct gets answered by a
// lagging follower return older revisions here; the store must never.
func TestReadsSeeOwnWritesOnR3(t *testing.T) {
	c := testnats.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, js := c.Connect(t, 0)
	if err := broker.Provision(ctx, js, broker.Resources{Replicas: 3}); err != nil {
		t.Fatalf("provision R3: %v", err)
	}
	// Followers start answering direct gets once they have caught up, about a
	// second after the bucket exists; before that every read is the leader's and
	// this test could not fail.
	time.Sleep(2 * time.Second)
	const id = "7f3c7b36-2f6d-4a57-8d3b-7a4bb0d1c0aa"
	for node := range c.Servers {
		_, js := c.Connect(t, node)
		st, err := kvstore.New(ctx, js, nil)
		if err != nil {
			t.Fatal(err)
		}
		if node == 0 {
			if _, err := st.Create(ctx, &events.Job{ID: id, UserID: "u"}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 300 {
			_, rev, err := st.Update(ctx, id, func(j *events.Job) error { j.RetryCount++; return nil })
			if err != nil {
				t.Fatalf("node %d update %d: %v", node+1, i, err)
			}
			_, got, err := st.Get(ctx, id)
			if err != nil {
				t.Fatalf("node %d get: %v", node+1, err)
			}
			if got < rev {
				t.Fatalf("node %d: read revision %d right after writing %d", node+1, got, rev)
			}
		}
	}
	// CAS conflicts on R3 (error code 10164) map to the same retry path.
	st, err := kvstore.New(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, rev, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, _, err = st.Update(ctx, id, func(j *events.Job) error {
		calls++
		if calls == 1 { // a concurrent writer slips in between read and write
			if _, _, err := st.Update(ctx, id, func(j *events.Job) error { j.Prompt = "other"; return nil }); err != nil {
				return err
			}
		}
		j.RetryCount++
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("CAS on R3: err %v after %d attempts (from revision %d), want a retried success", err, calls, rev)
	}
	if j, _, err := st.Get(ctx, id); err != nil || j.Prompt != "other" || j.RetryCount != 901 {
		t.Fatalf("after R3 conflict: %+v %v", j, err)
	}
	if _, _, err := st.Get(ctx, "deadbeef-0000-4000-8000-000000000000"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("unknown key on R3: %v", err)
	}
}
