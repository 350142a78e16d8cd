package ai

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Defaults of the circuit breaker (LLM_BREAKER_THRESHOLD,
// LLM_BREAKER_PROBE_INTERVAL).
const (
	DefaultBreakerThreshold     = 5
	DefaultBreakerProbeInterval = 15 * time.Second
)

// breaker is the circuit breaker of one Client's provider, shared by every
// step. It is closed while the provider answers. BreakerThreshold calls in a
// row that found it down (no answer, a timeout, a 5xx without a wait to obey)
// open it; while open no call is sent: each waits in the calling goroutine.
// Every ProbeInterval it is half-open: one waiting call goes through as the
// probe; an answer (any HTTP answer that is not a 5xx) closes the breaker and
// releases every waiting call, a failure keeps it open for another interval.
type breaker struct {
	threshold int
	interval  time.Duration
	changed   func(open bool)

	mu      sync.Mutex
	fails   int
	open    bool
	since   time.Time // when it opened
	reason  string    // the last failure
	probeAt time.Time // the next probe may start then
	probing bool      // a probe is in flight
	waiting int       // calls waiting in acquire
	wake    chan struct{}
}

func newBreaker(threshold int, interval time.Duration, changed func(open bool)) *breaker {
	if changed == nil {
		changed = func(bool) {}
	}
	return &breaker{threshold: threshold, interval: interval, changed: changed, wake: make(chan struct{})}
}

// broadcast wakes every waiting call; b.mu is held.
func (b *breaker) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// acquire waits until a call may be sent: at once while the breaker is closed;
// while it is open, until this call may be the probe (probe true) or another
// probe closed it. It returns ctx's error when ctx ends first.
func (b *breaker) acquire(ctx context.Context) (probe bool, err error) {
	for {
		b.mu.Lock()
		if !b.open {
			b.mu.Unlock()
			return false, nil
		}
		wait := time.Until(b.probeAt)
		if !b.probing && wait <= 0 {
			b.probing = true
			b.mu.Unlock()
			return true, nil
		}
		if b.probing {
			wait = b.interval
		}
		wake := b.wake
		b.waiting++
		b.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}

// record notes a call's outcome: down when the provider did not answer it
// (reason says how), else up. probe is what acquire returned.
func (b *breaker) record(probe, down bool, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if !down {
		b.fails = 0
		if b.open {
			b.open = false
			b.changed(false)
			b.broadcast()
		}
		return
	}
	b.fails++
	b.reason = reason
	switch {
	case b.open && probe:
		b.probeAt = time.Now().Add(b.interval)
		b.broadcast()
	case !b.open && b.fails >= b.threshold:
		b.open, b.since, b.probeAt = true, time.Now(), time.Now().Add(b.interval)
		b.changed(true)
		b.broadcast()
	}
}

// release gives back a probe whose call ended with no outcome (its caller's
// context ended): the next waiting call probes at once.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.broadcast()
}

// isOpen reports whether the breaker is open.
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// err is nil while the breaker is closed, else why it is open.
func (b *breaker) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return nil
	}
	next := "now"
	if d := time.Until(b.probeAt); d > 0 && !b.probing {
		next = "in " + d.Round(time.Second).String()
	}
	return fmt.Errorf("%w since %s after %d failed calls in a row (last: %s); next probe %s",
		ErrUnavailable, b.since.UTC().Format(time.RFC3339), b.fails, b.reason, next)
}

// hold is nil while new calls are wanted: the breaker is closed, or a probe is
// due and no call waits to be it (the callers that would probe all went away);
// else why not.
func (b *breaker) hold() error {
	b.mu.Lock()
	due := !b.probing && b.waiting == 0 && !time.Now().Before(b.probeAt)
	b.mu.Unlock()
	if due {
		return nil
	}
	return b.err()
}
