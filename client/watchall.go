package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// WatchAll follows the status events of every job from now on: each event
// published on jobs.status after WatchAll returns, in stream order (so in
// revision order per job), until ctx ends, when the channel is closed. It reads
// JOB_EVENTS with an ordered consumer that delivers new messages only, so a
// reconnection resumes where it stopped. A re-published event (same job and
// revision) is delivered once.
func (c *Client) WatchAll(ctx context.Context) (<-chan events.StatusEvent, error) {
	stream, err := c.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectStatus},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("watch all jobs: %w", err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch all jobs: %w", err)
	}
	out := make(chan events.StatusEvent, watchBuffer)
	go followAll(ctx, msgs, out)
	return out, nil
}

// followAll sends every decodable event to out until ctx ends or the iterator
// fails, then closes out. It remembers each running job's last revision to drop
// repeats, and forgets a job when its run ends, so its memory stays bounded by the
// jobs in flight.
func followAll(ctx context.Context, msgs jetstream.MessagesContext, out chan<- events.StatusEvent) {
	defer close(out)
	defer msgs.Stop()
	last := map[string]uint64{}
	for {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return
		}
		var ev events.StatusEvent
		if json.Unmarshal(msg.Data(), &ev) != nil || ev.JobID == "" || ev.Revision <= last[ev.JobID] {
			continue
		}
		if ev.Final() {
			delete(last, ev.JobID)
		} else {
			last[ev.JobID] = ev.Revision
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}
