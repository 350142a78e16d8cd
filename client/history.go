package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// historyIdle is how long History waits for the first event of a job whose
// events may all have aged out of JOB_EVENTS.
const historyIdle = 2 * time.Second

// History returns the status events of job id that JOB_EVENTS holds, oldest
// first, up to the stream's end when it is called: every run of the job (a
// retry, edit or refinement starts another), each event once. An unknown job
// is the service's 404 (errors.Is events.ErrNotFound). A job whose events have
// aged out of JOB_EVENTS has none.
//
// Unlike the control API's GET /jobs/{id}/history, which checks each event
// against the job's KV history, History returns the events as published, as
// Watch does.
func (c *Client) History(ctx context.Context, id string) ([]events.StatusEvent, error) {
	id, err := existingID(id)
	if err != nil {
		return nil, err
	}
	stream, err := c.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	end := stream.CachedInfo().State.LastSeq
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []events.StatusEvent
	if end == 0 {
		return out, nil
	}
	start := job.CreatedAt.Add(-replayMargin)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectStatus},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, fmt.Errorf("history of job %s: %w", id, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("history of job %s: %w", id, err)
	}
	defer msgs.Stop()
	var last uint64
	for first := true; ; first = false {
		next := ctx
		if first {
			var cancel context.CancelFunc
			next, cancel = context.WithTimeout(ctx, historyIdle)
			defer cancel()
		}
		msg, err := msgs.Next(jetstream.NextContext(next))
		switch {
		case err != nil && first && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			return out, nil // nothing since the job was created: aged out
		case err != nil:
			return nil, fmt.Errorf("history of job %s: %w", id, err)
		}
		if ev, ok := decodeEvent(msg.Data(), id); ok && ev.Revision > last {
			last = ev.Revision
			out = append(out, ev)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("history of job %s: %w", id, err)
		}
		if meta.Sequence.Stream >= end || meta.NumPending == 0 {
			return out, nil
		}
	}
}
