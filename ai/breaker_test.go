package ai

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// TestBreakerHoldsCallsThroughAnOutage: BreakerThreshold calls in a row that
// find the provider down open the breaker (Available says so, the gauge hook
// is told); calls made while it is open wait instead of failing, only probes
// reach the provider meanwhile, and once a probe is answered every waiting call
// is answered and the breaker closes.
func TestBreakerHoldsCallsThroughAnOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var changes []bool
	c, srv := newFakeClient(t, Config{Model: "m", BreakerThreshold: 2, BreakerProbeInterval: 200 * time.Millisecond,
		BreakerChanged: func(open bool) { mu.Lock(); changes = append(changes, open); mu.Unlock() }},
		func(fakellm.Request) fakellm.Reply {
			if down.Load() {
				return fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "down"}
			}
			return fakellm.Reply{Content: "an outline"}
		})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.GenerateDesign(ctx, nil, "w"); !errors.Is(err, ErrTransient) {
		t.Fatalf("first failure: %v, want transient (the breaker is still closed)", err)
	}
	if err := c.Available(); err != nil {
		t.Fatalf("available after one failure: %v", err)
	}
	results := make(chan error, 5)
	for range 5 {
		go func() {
			reply, err := c.GenerateDesign(ctx, nil, "w")
			if err == nil && reply.Text != "an outline" {
				err = errors.New("wrong answer " + reply.Text)
			}
			results <- err
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); c.Available() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not open within 10s")
		}
	}
	if err := c.Available(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Available = %v, want ErrUnavailable", err)
	}
	select {
	case err := <-results:
		t.Fatalf("a call returned (%v) while the breaker is open", err)
	case <-time.After(time.Second): // five probe intervals
	}
	before := len(srv.Calls())
	time.Sleep(time.Second)
	if n := len(srv.Calls()) - before; n > 7 {
		t.Fatalf("%d requests in 1s with the breaker open (probe every 200ms), want probes only", n)
	}
	down.Store(false)
	for range 5 {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("call after the outage: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("calls still waiting 30s after the provider came back")
		}
	}
	if err := c.Available(); err != nil {
		t.Fatalf("Available after the outage = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Fatalf("breaker changes %v, want [true false]", changes)
	}
}

// TestBreakerIgnoresAnsweredFailures: answers that are failures (4xx, 429s
// with or without a hint) show the provider up: they never open the breaker.
func TestBreakerIgnoresAnsweredFailures(t *testing.T) {
	c, _ := newFakeClient(t, Config{Model: "m", BreakerThreshold: 1}, fakellm.Script(
		fakellm.Reply{Status: http.StatusBadRequest},
		fakellm.Reply{Status: http.StatusTooManyRequests},
		fakellm.Reply{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}},
		fakellm.Reply{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}},
	))
	for range 4 {
		_, _ = c.GenerateDesign(context.Background(), nil, "w")
		if err := c.Available(); err != nil {
			t.Fatalf("Available = %v after an answered failure", err)
		}
	}
}

// TestBreakerWaitEndsWithTheContext: the call that opens the breaker waits
// for it too, and a call waiting on the open breaker returns its context's
// error when the context ends.
func TestBreakerWaitEndsWithTheContext(t *testing.T) {
	c, srv := newFakeClient(t, Config{Model: "m", BreakerThreshold: 1, BreakerProbeInterval: time.Hour},
		fakellm.Script(fakellm.Reply{Status: http.StatusInternalServerError}))
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := c.GenerateDesign(ctx, nil, "w")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the context's", err)
		}
		if !errors.Is(c.Available(), ErrUnavailable) {
			t.Fatalf("Available = %v, want ErrUnavailable", c.Available())
		}
	}
	if n := len(srv.Calls()); n != 1 {
		t.Fatalf("%d requests, want 1: no probe before the interval", n)
	}
}

// TestBreakerHoldLetsAProbeInWhenNoCallWaits: while calls wait on the open
// breaker, Hold keeps new work out (they will probe); once every waiting call
// went away, Hold lets work in when a probe is due, so the breaker cannot stay
// open for want of a call.
func TestBreakerHoldLetsAProbeInWhenNoCallWaits(t *testing.T) {
	c, _ := newFakeClient(t, Config{Model: "m", BreakerThreshold: 1, BreakerProbeInterval: 300 * time.Millisecond},
		fakellm.Script(fakellm.Reply{Status: http.StatusBadGateway}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _, _ = c.GenerateDesign(ctx, nil, "w"); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); c.Available() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not open within 10s")
		}
	}
	time.Sleep(time.Second) // probes fail meanwhile; the call keeps waiting
	if err := c.Hold(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Hold = %v with a call waiting to probe, want ErrUnavailable", err)
	}
	cancel()
	<-done
	for deadline := time.Now().Add(5 * time.Second); c.Hold() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Hold = %v 5s after the last waiting call left, want nil once a probe is due", c.Hold())
		}
	}
	if !errors.Is(c.Available(), ErrUnavailable) {
		t.Fatalf("Available = %v, want the breaker still open", c.Available())
	}
}
