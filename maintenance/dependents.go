package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/worker"
)

const (
	// wakeTimeout bounds the handling of one status event: listing the ended
	// job's dependents and re-evaluating each.
	wakeTimeout = 30 * time.Second
	// wakeBuffer is how many status events one process pulls ahead.
	wakeBuffer = 64
)

// dependents wakes the jobs that wait for a job whose run ended. It follows
// jobs.status through the durable consumer "dependents" of JOB_EVENTS, which
// every process shares, so each event is handled by one process. For an event
// that ends a run (completed, aborted, waiting_manual, a rejected request) it
// re-evaluates every job the dependents index lists under the event's job. The
// consumer takes no acks (broker.dependentsConsumer): a wake-up that fails is
// retried in place and then left to the sweeper, which re-checks every waiting
// job on each pass. A duplicated event re-evaluates jobs no longer blocked,
// which changes nothing.
type dependents struct {
	js    jetstream.JetStream
	store interface {
		Dependents(ctx context.Context, dep string) ([]string, error)
	}
	jobs jobs
	log  *slog.Logger
	msgs jetstream.MessagesContext

	loop
}

// start binds the consumer and follows it until stop.
func (d *dependents) start(ctx context.Context) error {
	msgs, err := d.follow(ctx)
	if err != nil {
		return err
	}
	d.msgs = msgs
	d.loop.start(ctx, d.run)
	return nil
}

func (d *dependents) follow(ctx context.Context) (jetstream.MessagesContext, error) {
	bindCtx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	cons, err := d.js.Consumer(bindCtx, events.StreamEvents, broker.ConsumerDependents)
	if err != nil {
		return nil, fmt.Errorf("bind consumer %s: %w", broker.ConsumerDependents, err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(wakeBuffer))
	if err != nil {
		return nil, fmt.Errorf("follow consumer %s: %w", broker.ConsumerDependents, err)
	}
	return msgs, nil
}

// stop stops following; the event in hand finishes until ctx ends. Events
// pulled and not handled are redelivered to another process after AckWait.
func (d *dependents) stop(ctx context.Context) {
	d.loop.stop(ctx)
	d.msgs.Stop()
}

// run handles events one at a time. When the consumer goes away (a restore from
// backup) it binds it again every worker.RebindEvery, as a stage's runner does.
func (d *dependents) run(ctx context.Context) {
	for {
		msg, err := d.msgs.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			d.log.ErrorContext(ctx, "dependents consumer gone: waiting for it to come back")
			if !d.rebind(ctx) {
				return
			}
		case err != nil:
			d.log.WarnContext(ctx, "receive status event", "error", err)
			if !wait.Sleep(ctx, time.Second) {
				return
			}
		default:
			d.handle(msg)
		}
	}
}

func (d *dependents) rebind(ctx context.Context) bool {
	for wait.Sleep(ctx, worker.RebindEvery) {
		msgs, err := d.follow(ctx)
		if err == nil {
			d.msgs.Stop()
			d.msgs = msgs
			return true
		}
	}
	return false
}

// handle re-evaluates every dependent of a job whose run ended, as one status
// event says. The consumer takes no acks: a failure is retried here a few times
// and then left to the sweeper.
func (d *dependents) handle(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(d.workCtx, wakeTimeout)
	defer cancel()
	var ev events.StatusEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.JobID == "" {
		d.log.WarnContext(ctx, "ignoring status event that does not decode", "error", err)
		return
	}
	if !ev.Final() {
		return
	}
	for attempt := 1; ; attempt++ {
		err := d.wakeDependents(ctx, ev.JobID)
		if err == nil {
			return
		}
		if attempt == wakeAttempts || !wait.Sleep(ctx, time.Second) {
			d.log.WarnContext(ctx, "wake dependents: left to the sweeper", "job_id", ev.JobID, "error", err)
			return
		}
	}
}

// wakeAttempts bounds the tries to wake one job's dependents; the consumer takes
// no acks, so the sweeper's re-check of waiting jobs is what follows.
const wakeAttempts = 3

// wakeDependents re-evaluates every job indexed as depending on job id.
func (d *dependents) wakeDependents(ctx context.Context, id string) error {
	ids, err := d.store.Dependents(ctx, id)
	if err != nil {
		return err
	}
	var errs []error
	for _, dep := range ids {
		if err := d.jobs.Wake(ctx, dep); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", dep, err))
		}
	}
	return errors.Join(errs...)
}
