package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// rebindEvery is how often a runner whose consumer is gone looks for it again.
const rebindEvery = 2 * time.Second

// keepConsuming watches the consumption of b's queue: when the server ends it
// (the queue's consumer or the JOBS stream was deleted, as a restore from backup
// does) it looks for the consumer every rebindEvery and consumes again once it is
// back; when a pause for storage ended it (pause.go), it consumes again once the
// pause is over. It returns when the runner stops.
func (r *runner) keepConsuming(js jetstream.JetStream, b *binding, cc jetstream.ConsumeContext) {
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
			r.log.Error("stage consumer gone: waiting for it to come back", "step", r.stage, "consumer", b.queue.Durable())
		}
		var ok bool
		if cc, ok = r.rebind(js, b, paused); !ok {
			return
		}
		r.log.Info("stage consuming again", "step", r.stage, "consumer", b.queue.Durable(), "after_pause", paused)
	}
}

// rebind waits for the consumer of b's queue and consumes it, trying at once
// when now is set, else after rebindEvery; false when the runner stops first.
func (r *runner) rebind(js jetstream.JetStream, b *binding, now bool) (jetstream.ConsumeContext, bool) {
	t := time.NewTicker(rebindEvery)
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
		ctx, cancel := context.WithTimeout(r.workCtx, rebindEvery)
		cons, err := js.Consumer(ctx, events.StreamJobs, b.queue.Durable())
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
func (r *runner) setConsumption(b *binding, cc jetstream.ConsumeContext) bool {
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

// consuming is nil while the runner consumes every queue of its stage, else
// names the queues whose consumer is gone and since when, or the pause of
// fetching for storage.
func (r *runner) consuming() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for _, b := range r.bindings {
		if b.paused {
			gone = append(gone, fmt.Sprintf("stage %s paused fetching: storage full since %s",
				r.stage, r.pause.since.UTC().Format(time.RFC3339)))
			break
		}
	}
	for _, b := range r.bindings {
		if b.paused {
			continue
		}
		if b.cc == nil && !b.downSince.IsZero() {
			gone = append(gone, fmt.Sprintf("stage %s is not consuming: its consumer %s has been gone since %s",
				r.stage, b.queue.Durable(), b.downSince.UTC().Format(time.RFC3339)))
		}
	}
	if len(gone) > 0 {
		return errors.New(strings.Join(gone, "; "))
	}
	return nil
}

// Consuming is nil while every stage this process runs consumes all its queues'
// consumers and none of its workers is stuck waiting on the server; otherwise
// it names the consumers it waits for to come back and the stuck workers.
func (p *Pipeline) Consuming() error {
	p.mu.Lock()
	runners := p.runners
	p.mu.Unlock()
	var errs []string
	for _, r := range runners {
		if err := r.consuming(); err != nil {
			errs = append(errs, err.Error())
		}
		if err := r.stuck(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
