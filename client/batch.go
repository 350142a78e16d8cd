package client

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/batchfollow"
)

// SubmitBatch sends b to the control API (sheetpipe.batch) and returns the batch
// id and its jobs' ids, in order, once the service has stored every job. An empty
// b.BatchID gets a new UUIDv4 here, so a batch whose reply was lost (or that
// failed half way) can be sent again as it is: the service then creates only the
// jobs still missing and returns the same ids.
//
// The whole batch is refused, with nothing created, when it has no job or more
// than events.MaxBatchJobs, or when one request is invalid (code 400, the message
// naming the first bad job, e.g. "jobs[2]: user_id is required"); the batch id
// sent again with other jobs, or a job_id taken by a different request, is code
// 409.
func (c *Client) SubmitBatch(ctx context.Context, b events.BatchRequest) (events.BatchReply, error) {
	if b.BatchID == "" {
		b.BatchID = uuid.NewString()
	}
	var reply events.BatchReply
	err := c.call(ctx, events.OpBatch, b, &reply)
	return reply, err
}

// Batch returns the aggregate status of batch id (sheetpipe.batch.get): its
// jobs' statuses, counts per status and Done once every job has ended. A job the
// batch names that was never created shows as events.StatusMissing (send the
// batch again). An unknown batch is code 404.
func (c *Client) Batch(ctx context.Context, id string) (events.BatchStatus, error) {
	var s events.BatchStatus
	err := c.call(ctx, events.OpBatchGet, events.BatchRef{BatchID: id}, &s)
	return s, err
}

// batchRecheck is how long WatchBatch waits for an event of the batch's jobs
// before it asks for the batch's status, in case an event was never published.
const batchRecheck = 15 * time.Second

// WatchBatch follows batch id: first its status with every job, then a new status
// each time one of its jobs changes, listing that job alone (Counts and Done are
// the whole batch's). The channel is closed after the status that is Done, or
// when ctx ends. It reads the end of JOB_EVENTS before the batch's status, so no
// change after that is missed.
func (c *Client) WatchBatch(ctx context.Context, id string) (<-chan events.BatchStatus, error) {
	stream, err := c.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	from := stream.CachedInfo().State.LastSeq + 1
	first, err := c.Batch(ctx, id)
	if err != nil {
		return nil, err
	}
	var msgs jetstream.MessagesContext
	if !first.Done {
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.SubjectStatus},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    from,
		})
		if err != nil {
			return nil, fmt.Errorf("watch batch %s: %w", id, err)
		}
		if msgs, err = cons.Messages(); err != nil {
			return nil, fmt.Errorf("watch batch %s: %w", id, err)
		}
	}
	out := make(chan events.BatchStatus, watchBuffer)
	go batchfollow.Send(ctx, msgs, first, out, batchRecheck, c.Batch)
	return out, nil
}
