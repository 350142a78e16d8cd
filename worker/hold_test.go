package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/worker"
)

// TestHoldPausesFetching: while Config.Hold reports an error the runner says
// it paused fetching and no message published meanwhile is delivered (none is
// pending acknowledgement, none handled); once Hold reports nil it consumes
// again and handles them all, and Consuming is nil.
func TestHoldPausesFetching(t *testing.T) {
	e := newEnv(t, time.Minute)
	var held atomic.Bool
	held.Store(true)
	var handled atomic.Int32
	r := e.start(worker.Config{Concurrency: 2,
		Hold: func() error {
			if held.Load() {
				return errors.New("the LLM is down")
			}
			return nil
		},
		Handler: func(context.Context, jetstream.Msg) error { handled.Add(1); return nil }})
	for deadline := time.Now().Add(10 * time.Second); r.Consuming() == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the runner did not pause fetching within 10s of Hold reporting an error")
		}
	}
	if err := r.Consuming(); !strings.Contains(err.Error(), "test paused fetching") {
		t.Fatalf("Consuming = %v, want it to say the runner paused fetching", err)
	}
	for range 3 {
		e.publish("x")
	}
	// No event marks "not fetching": watch the consumer for a second (four
	// checks of Hold) and see nothing delivered.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := e.js.Consumer(e.ctx, stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		if ci := c.CachedInfo(); ci.NumAckPending != 0 || ci.NumPending != 3 {
			t.Fatalf("consumer while held: %d pending, %d delivered; want 3 pending, none delivered", ci.NumPending, ci.NumAckPending)
		}
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("%d messages handled while held", n)
	}
	held.Store(false)
	e.waitInfo("all handled", func(ci *jetstream.ConsumerInfo) bool { return ci.NumPending == 0 && ci.NumAckPending == 0 })
	if n := handled.Load(); n != 3 {
		t.Fatalf("%d messages handled after the hold, want 3", n)
	}
	if err := r.Consuming(); err != nil {
		t.Fatalf("Consuming = %v after the hold", err)
	}
}
