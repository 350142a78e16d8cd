package worker

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A write refused for want of storage (events.ErrStorage: the server's disk is
// full) fails every ticket alike until space is freed, and is nobody's fault:
// the runner does not count it against the job's retries, and it stops fetching
// instead of pulling ticket after ticket to fail. Each such failure naks its
// ticket with a delay and pauses the runner's fetching: every consumption of the
// runner is drained (tickets fetched but not started are naked with the same
// delay) and consumed again once the pause is over and Config.Storage reports
// storage working. The pause doubles from storagePauseMin up to
// storagePauseMax while fetching resumes onto failing storage, and starts over
// after a ticket succeeds.
const (
	storagePauseMin   = time.Second
	storagePauseMax   = 30 * time.Second
	storageProbeEvery = 250 * time.Millisecond
)

// pause is a runner's pause of fetching; guarded by Runner.mu.
type pause struct {
	until time.Time     // fetching resumes after it
	last  time.Duration // the length of the last pause; 0 after a success
	since time.Time     // start of the current run of pauses
	held  bool          // fetching is held for Config.Hold (hold.go)
}

// pausedFor is how long the current pause still lasts (0: not paused).
func (r *Runner) pausedFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(time.Until(r.pause.until), 0)
}

// pauseFetching starts a pause (or joins the one running) and returns how long
// it lasts.
func (r *Runner) pauseFetching() time.Duration {
	r.mu.Lock()
	if d := time.Until(r.pause.until); d > 0 {
		r.mu.Unlock()
		return d
	}
	d := min(max(2*r.pause.last, storagePauseMin), storagePauseMax)
	if r.pause.last == 0 {
		r.pause.since = time.Now()
	}
	r.pause.last, r.pause.until = d, time.Now().Add(d)
	ccs, _ := r.stopConsuming()
	r.mu.Unlock()
	drain(ccs)
	return d
}

// stopConsuming marks every consumption of the runner paused and returns them
// for drain; ok is false, and nothing is marked, when the runner is stopping.
// The caller holds r.mu.
func (r *Runner) stopConsuming() (ccs []jetstream.ConsumeContext, ok bool) {
	select {
	case <-r.stopping:
		return nil, false
	default:
	}
	for _, b := range r.bindings {
		if b.cc != nil {
			b.paused = true
			ccs = append(ccs, b.cc)
		}
	}
	return ccs, true
}

// drain drains the consumptions stopConsuming returned: their buffered tickets
// reach dispatch, which naks them.
func drain(ccs []jetstream.ConsumeContext) {
	for _, cc := range ccs {
		cc.Drain()
	}
}

// storageWorks ends a run of pauses: the next starts at storagePauseMin.
func (r *Runner) storageWorks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pause.last = 0
}

// waitResume waits until the pause is over, storage works and Config.Hold
// lets the runner fetch (hold.go); false when the runner stops first.
func (r *Runner) waitResume() bool {
	for {
		d := r.pausedFor()
		if d == 0 {
			if (r.cfg.Storage == nil || r.cfg.Storage() == nil) && r.holdOver() {
				return true
			}
			d = storageProbeEvery
		}
		t := time.NewTimer(d)
		select {
		case <-r.stopping:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// isPaused reports whether b's consumption was stopped by a pause.
func (r *Runner) isPaused(b *binding) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return b.paused
}
