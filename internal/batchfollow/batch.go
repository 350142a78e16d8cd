// Package batchfollow holds what the service and its client share to follow a batch
// on the status events stream.
package batchfollow

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// Verify checks an event of one of the batch's jobs before it counts, and
// returns what counts instead (the event as the job's state shows it); false
// drops it.
type Verify func(ctx context.Context, ev events.StatusEvent) (events.StatusEvent, bool)

// NextStatus returns the batch's status after the next change of one of its
// jobs: from the events in msgs that verify accepts (nil: every one), or, when
// they stay silent for recheck, from reread (a final event lost before it
// reached the stream would otherwise leave the batch waiting for ever). false
// when ctx ends or msgs fails.
func NextStatus(ctx context.Context, msgs jetstream.MessagesContext, tally *events.BatchTally, recheck time.Duration,
	reread func(context.Context, string) (events.BatchStatus, error), verify Verify) (events.BatchStatus, bool) {
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(recheck))
		switch {
		case ctx.Err() != nil:
			return events.BatchStatus{}, false
		case errors.Is(err, nats.ErrTimeout):
			if now, err := reread(ctx, tally.ID()); err == nil {
				if s, ok := tally.Refresh(now); ok {
					return s, true
				}
			}
			continue
		case err != nil:
			return events.BatchStatus{}, false
		}
		var ev events.StatusEvent
		if json.Unmarshal(msg.Data(), &ev) != nil || !tally.Newer(ev) {
			continue
		}
		if verify != nil {
			var ok bool
			if ev, ok = verify(ctx, ev); !ok {
				continue
			}
		}
		if s, ok := tally.Apply(ev); ok {
			return s, true
		}
	}
}

// Send sends first, then the batch's status after each change of one of its
// jobs, and closes out once a status is Done, ctx ends or msgs fails; it stops
// msgs (nil when first is Done) when it returns.
func Send(ctx context.Context, msgs jetstream.MessagesContext, first events.BatchStatus, out chan<- events.BatchStatus,
	recheck time.Duration, reread func(context.Context, string) (events.BatchStatus, error)) {
	SendVerified(ctx, msgs, first, out, recheck, reread, nil)
}

// SendVerified is Send counting only the events verify accepts.
func SendVerified(ctx context.Context, msgs jetstream.MessagesContext, first events.BatchStatus, out chan<- events.BatchStatus,
	recheck time.Duration, reread func(context.Context, string) (events.BatchStatus, error), verify Verify) {
	defer close(out)
	if msgs != nil {
		defer msgs.Stop()
		defer context.AfterFunc(ctx, msgs.Stop)() // a reader gone ends the wait at once
	}
	tally := events.NewBatchTally(first)
	for s := first; ; {
		select {
		case out <- s:
		case <-ctx.Done():
			return
		}
		if s.Done {
			return
		}
		var ok bool
		if s, ok = NextStatus(ctx, msgs, tally, recheck, reread, verify); !ok {
			return
		}
	}
}
