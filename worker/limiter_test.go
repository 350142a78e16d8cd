package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/worker"
)

// Two places per key: a third take is refused while both holders live, a
// released place is taken again, another key has its own places, a holder that
// stops renewing loses its place once its lease expired, and the old holder's
// renewal and release then fail or do nothing to the new holder's place.
func TestKVLimiter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := testnats.Start(t)
	kv, err := ns.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "places"})
	if err != nil {
		t.Fatal(err)
	}
	l := &worker.KVLimiter{KV: kv, Prefix: "design", N: 2, TTL: 500 * time.Millisecond}
	take := func(key, owner string) worker.Lease {
		t.Helper()
		lease, err := l.Take(ctx, key, owner)
		if err != nil {
			t.Fatal(err)
		}
		return lease
	}
	a1, a2 := take("alice", "a1"), take("alice", "a2")
	if a1 == nil || a2 == nil {
		t.Fatal("the first two takes of alice were refused")
	}
	if take("alice", "a3") != nil {
		t.Fatal("a third place of alice was given while two live holders have both")
	}
	if take("bob with spaces/and*wildcards>", "b1") == nil {
		t.Fatal("bob was refused: a key's places are its own")
	}
	if err := a1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	a3 := take("alice", "a3")
	if a3 == nil {
		t.Fatal("a released place was not given again")
	}
	// a2 and a3 keep renewing for 1s (two TTLs): still no place for a4.
	for range 4 {
		time.Sleep(250 * time.Millisecond)
		if err := a2.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a3.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if take("alice", "a4") != nil {
			t.Fatal("a place of a renewing holder was taken")
		}
	}
	// a3 stops renewing (its holder died): its place frees after its TTL.
	deadline := time.Now().Add(10 * time.Second)
	var a4 worker.Lease
	for a4 == nil {
		if time.Now().After(deadline) {
			t.Fatal("a dead holder's place never freed")
		}
		time.Sleep(100 * time.Millisecond)
		if err := a2.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		a4 = take("alice", "a4")
	}
	if err := a3.Renew(ctx); err == nil {
		t.Error("the dead holder renewed a place taken over")
	}
	if err := a3.Release(ctx); err != nil {
		t.Errorf("release of a place taken over: %v", err)
	}
	if take("alice", "a5") != nil {
		t.Error("the dead holder's release freed the new holder's place")
	}
}
