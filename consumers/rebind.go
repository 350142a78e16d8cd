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

// keepConsuming watches the runner's consumption: when the server ends it (the
// stage's consumer or the JOBS stream was deleted, as a restore from backup does)
// it looks for the consumer every rebindEvery and consumes again once it is back.
// It returns when the runner stops.
func (r *runner) keepConsuming(js jetstream.JetStream, cc jetstream.ConsumeContext) {
	for {
		select {
		case <-r.stopping:
			return
		case <-cc.Closed():
		}
		if !r.setConsumption(nil) {
			return
		}
		r.log.Error("stage consumer gone: waiting for it to come back", "step", r.stage)
		var ok bool
		if cc, ok = r.rebind(js); !ok {
			return
		}
		r.log.Info("stage consumer back: consuming again", "step", r.stage)
	}
}

// rebind waits for the stage's consumer and consumes it; false when the runner
// stops first.
func (r *runner) rebind(js jetstream.JetStream) (jetstream.ConsumeContext, bool) {
	t := time.NewTicker(rebindEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stopping:
			return nil, false
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.workCtx, rebindEvery)
		cons, err := js.Consumer(ctx, events.StreamJobs, string(r.stage))
		cancel()
		if err != nil {
			continue
		}
		cc, err := r.consume(cons)
		if err != nil {
			continue
		}
		if !r.setConsumption(cc) {
			cc.Stop()
			return nil, false
		}
		return cc, true
	}
}

// setConsumption records the current consumption (nil: none); false when the
// runner is stopping, in which case nothing is recorded.
func (r *runner) setConsumption(cc jetstream.ConsumeContext) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stopping:
		return false
	default:
	}
	r.cc = cc
	if cc == nil {
		r.downSince = time.Now()
	}
	return true
}

// consuming is nil while the runner consumes its stage, else says since when not.
func (r *runner) consuming() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cc == nil && !r.downSince.IsZero() {
		return fmt.Errorf("stage %s is not consuming: its consumer has been gone since %s", r.stage, r.downSince.UTC().Format(time.RFC3339))
	}
	return nil
}

// Consuming is nil while every stage this process runs consumes its consumer;
// otherwise it names the stages that wait for theirs to come back.
func (p *Pipeline) Consuming() error {
	p.mu.Lock()
	runners := p.runners
	p.mu.Unlock()
	var errs []string
	for _, r := range runners {
		if err := r.consuming(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
