package worker

import (
	"time"
)

// A runner whose work needs an outside service (the LLM stages need the LLM
// provider) is given Config.Hold, which reports the service unavailable (the
// LLM client's circuit breaker is open). While it does, the runner fetches
// nothing: it checks Hold every holdCheckEvery, and when it reports an error
// it drains its consumptions as a storage pause does (pause.go), naking the
// tickets fetched but not started with holdNakDelay, and consumes again once
// Hold reports nil. Work already started is not touched: its calls wait
// inside the service's client.
const (
	holdCheckEvery = 250 * time.Millisecond
	holdNakDelay   = time.Second
)

// watchHold holds fetching whenever Config.Hold reports an error, until the
// runner stops.
func (r *Runner) watchHold() {
	t := time.NewTicker(holdCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stopping:
			return
		case <-t.C:
		}
		if err := r.cfg.Hold(); err != nil && !r.isHeld() {
			r.cfg.Log.Warn("fetching held", "reason", err)
			r.holdFetching()
		}
	}
}

// holdFetching drains every consumption of the runner; keepConsuming consumes
// again once waitResume finds Hold reporting nil.
func (r *Runner) holdFetching() {
	r.mu.Lock()
	ccs, ok := r.stopConsuming()
	r.pause.held = r.pause.held || ok
	r.mu.Unlock()
	drain(ccs)
}

// isHeld reports whether fetching is held for Config.Hold.
func (r *Runner) isHeld() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pause.held
}

// holdOver reports whether Config.Hold lets the runner fetch, and ends the
// hold when it does.
func (r *Runner) holdOver() bool {
	if r.cfg.Hold != nil && r.cfg.Hold() != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pause.held = false
	return true
}
