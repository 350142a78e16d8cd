package control

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/batchfollow"
)

// FollowBatch sends the batch's status, with every job, then a new status each
// time one of its jobs changes, listing that job alone, and closes the channel
// after the status that is Done or when ctx ends. As Follow does, it reads the
// end of JOB_EVENTS before the jobs, so no change after that read is missed, and
// when the events stay silent for a while it reads the jobs again, in case an
// event was never published. Like Follow, it counts an event only once the jobs
// bucket confirms it.
func (p *Plane) FollowBatch(ctx context.Context, id string) (<-chan events.BatchStatus, error) {
	id, err := events.BatchIDOf(id)
	if err != nil {
		return nil, err
	}
	stream, from, err := p.eventsEnd(ctx)
	if err != nil {
		return nil, err
	}
	first, err := p.Batch(ctx, id)
	if err != nil {
		return nil, err
	}
	var msgs jetstream.MessagesContext
	if !first.Done {
		if msgs, err = statusFrom(ctx, stream, from); err != nil {
			return nil, fmt.Errorf("follow batch %s: %w", id, err)
		}
	}
	out := make(chan events.BatchStatus)
	check := p.eventCheck()
	verify := func(ctx context.Context, ev events.StatusEvent) (events.StatusEvent, bool) {
		return p.verifyEvent(ctx, check, ev)
	}
	go batchfollow.SendVerified(ctx, msgs, first, out, followRecheck, p.Batch, verify)
	return out, nil
}
