package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// WatchAll sees every job's events from the moment it is called, each job's in
// revision order, and closes its channel when its context ends.
func TestWatchAll(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	before, _ := completedJob(ctx, t, c, "ada")

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := c.WatchAll(watchCtx)
	if err != nil {
		t.Fatalf("WatchAll: %v", err)
	}
	first, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	second, err := c.Submit(ctx, events.JobRequest{UserID: "bob", Prompt: "an addition worksheet"})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	seen := map[string][]events.StatusEvent{}
	for len(seen[first]) == 0 || !seen[first][len(seen[first])-1].Final() ||
		len(seen[second]) == 0 || !seen[second][len(seen[second])-1].Final() {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("WatchAll closed early (ctx err %v); seen %v", ctx.Err(), seen)
			}
			seen[ev.JobID] = append(seen[ev.JobID], ev)
		case <-ctx.Done():
			t.Fatalf("both jobs not done before the test's deadline; seen %v", seen)
		}
	}
	if len(seen[before]) != 0 {
		t.Fatalf("WatchAll delivered events of a job that ended before it: %s", describe(seen[before]))
	}
	checkCompleted(t, first, seen[first])
	checkCompleted(t, second, seen[second])

	stop()
	select {
	case _, ok := <-drain(ch):
		if ok {
			t.Fatal("drain returned a value")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchAll did not close its channel within 10s of its context ending")
	}
}

// drain reads ch until it closes and then closes the channel it returns.
func drain(ch <-chan events.StatusEvent) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	return done
}
