package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RebindEvery is how often a runner whose consumer is gone looks for it again.
const RebindEvery = 2 * time.Second

// keepConsuming watches the consumption of b's queue: when the server ends it
// (the queue's consumer or the JOBS stream was deleted, as a restore from backup
// does) it looks for the consumer every RebindEvery and consumes again once it is
// back; when a pause for storage ended it (pause.go), it consumes again once the
// pause is over. It returns when the runner stops.
func (r *Runner) keepConsuming(js jetstream.JetStream, b *binding, cc jetstream.ConsumeContext) {
	for {
		select {
		case <-r.stopping:
			return
		case <-cc.Closed():
		}
		if !r.setConsumption(b, nil) {
			return
		}
		paused := r.isPaused(b)
		if paused {
			if !r.waitResume() {
				return
			}
		} else {
			r.cfg.Log.Error("stage consumer gone: waiting for it to come back", "consumer", b.durable)
		}
		var ok bool
		if cc, ok = r.rebind(js, b, paused); !ok {
			return
		}
		r.cfg.Log.Info("stage consuming again", "consumer", b.durable, "after_pause", paused)
	}
}

// rebind waits for the consumer of b's queue and consumes it, trying at once
// when now is set, else after RebindEvery; false when the runner stops first.
func (r *Runner) rebind(js jetstream.JetStream, b *binding, now bool) (jetstream.ConsumeContext, bool) {
	t := time.NewTicker(RebindEvery)
	defer t.Stop()
	for {
		if !now {
			select {
			case <-r.stopping:
				return nil, false
			case <-t.C:
			}
		}
		now = false
		ctx, cancel := context.WithTimeout(r.workCtx, RebindEvery)
		cons, err := js.Consumer(ctx, r.cfg.Stream, b.durable)
		cancel()
		if err != nil {
			continue
		}
		r.expectBacklog(b, cons)
		cc, err := r.consume(b, cons)
		if err != nil {
			continue
		}
		if !r.setConsumption(b, cc) {
			cc.Stop()
			return nil, false
		}
		return cc, true
	}
}

// setConsumption records the current consumption of b's queue (nil: none; a
// consumption ends a pause); false when the runner is stopping, in which case
// nothing is recorded.
func (r *Runner) setConsumption(b *binding, cc jetstream.ConsumeContext) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stopping:
		return false
	default:
	}
	b.cc = cc
	if cc == nil {
		b.downSince = time.Now()
	} else {
		b.paused = false
	}
	return true
}

// Consuming is nil while the runner consumes every one of its consumers, else
// names those that are gone and since when, or the pause of fetching for
// storage.
func (r *Runner) Consuming() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for _, b := range r.bindings {
		if b.paused && r.pause.held {
			gone = append(gone, fmt.Sprintf("%s paused fetching: the service it needs is unavailable", r.cfg.Name))
			break
		}
		if b.paused {
			gone = append(gone, fmt.Sprintf("%s paused fetching: storage full since %s",
				r.cfg.Name, r.pause.since.UTC().Format(time.RFC3339)))
			break
		}
	}
	for _, b := range r.bindings {
		if b.paused {
			continue
		}
		if b.cc == nil && !b.downSince.IsZero() {
			gone = append(gone, fmt.Sprintf("%s is not consuming: its consumer %s has been gone since %s",
				r.cfg.Name, b.durable, b.downSince.UTC().Format(time.RFC3339)))
		}
	}
	if len(gone) > 0 {
		return errors.New(strings.Join(gone, "; "))
	}
	return nil
}
