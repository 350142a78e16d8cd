package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// watchBuffer is how many events a watch holds for a slow reader.
const watchBuffer = 16

// Watch follows the status events of job id, from its first event, in revision
// order. The channel is closed once the job's latest run has ended (an event that
// is Final and no later event of the job is in JOB_EVENTS) or when ctx ends, so
// cancel ctx to stop watching early. A job run again after it ended (retry, edit,
// refine) shows every run, and the watch ends with the last. A job whose events
// have aged out of JOB_EVENTS yields nothing until ctx ends.
//
// Watch may be called before the job exists (even before Submit), while it runs or
// after it finished: it replays JOB_EVENTS, and a job not yet in KV can only have
// events after the stream's current end, which is where the replay then starts.
func (c *Client) Watch(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
	return c.WatchFrom(ctx, id, 0)
}

// WatchFrom is Watch without the events before revision rev: use the revision a
// control request (EditLatex, Retry, Refine) returned to follow the run it started.
func (c *Client) WatchFrom(ctx context.Context, id string, rev uint64) (<-chan events.StatusEvent, error) {
	id, err := existingID(id)
	if err != nil {
		return nil, err
	}
	stream, err := c.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := c.replayFrom(ctx, stream, id)
	if err != nil {
		return nil, err
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("watch job %s: %w", id, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch job %s: %w", id, err)
	}
	out := make(chan events.StatusEvent, watchBuffer)
	go follow(ctx, msgs, id, rev, out)
	return out, nil
}

// replayFrom picks where the replay starts. The stream's last sequence (read when
// stream was looked up) precedes the job lookup, so if the job does not exist yet,
// all its events come after that sequence.
func (c *Client) replayFrom(ctx context.Context, stream jetstream.Stream, id string) (jetstream.OrderedConsumerConfig, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectStatus},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	lastSeq := stream.CachedInfo().State.LastSeq
	exists, err := c.jobExists(ctx, id)
	if err != nil {
		return cfg, err
	}
	if !exists {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = lastSeq + 1
		return cfg, nil
	}
	// An existing job's events start when it was created: replay from then (with
	// a margin for clocks that disagree), not from the stream's first event. If
	// the control API does not answer, the whole stream is replayed.
	if job, err := c.Get(ctx, id); err == nil && !job.CreatedAt.IsZero() {
		start := job.CreatedAt.Add(-replayMargin)
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	return cfg, nil
}

// replayMargin is how long before a job's creation time its replay starts.
const replayMargin = time.Minute

// jobExists asks the leader of the jobs bucket's stream whether it holds the job's
// key. A KV Get would not do: it may be answered by a lagging replica (direct
// get) and deny a job created a moment ago, whose first events would be skipped.
func (c *Client) jobExists(ctx context.Context, id string) (bool, error) {
	const kvStream = "KV_" + events.BucketJobs
	s, err := c.js.Stream(ctx, kvStream)
	if err != nil {
		return false, fmt.Errorf("bucket %s: %w", events.BucketJobs, notProvisioned(err))
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("$KV."+events.BucketJobs+"."+id))
	if err != nil {
		return false, fmt.Errorf("look up job %s: %w", id, err)
	}
	return len(info.State.Subjects) > 0, nil
}

// follow sends job id's events from revision from on to out, then closes out when
// the job's latest run has ended, ctx ends or the iterator fails. An event at or
// below the last revision sent is a re-publish or arrived late, and is dropped.
//
// The run has ended when the last event sent is Final and the consumer has caught
// up with the stream (a message with nothing pending after it): a Final event
// replayed from an earlier run is followed by the next run's events.
func follow(ctx context.Context, msgs jetstream.MessagesContext, id string, from uint64, out chan<- events.StatusEvent) {
	defer close(out)
	defer msgs.Stop()
	var last uint64
	if from > 0 {
		last = from - 1
	}
	ended := false
	for {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return
		}
		if ev, ok := decodeEvent(msg.Data(), id); ok && ev.Revision > last {
			last, ended = ev.Revision, ev.Final()
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
		if ended && caughtUp(msg) {
			return
		}
	}
}

// caughtUp reports whether no message matching the consumer follows msg.
func caughtUp(msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	return err == nil && meta.NumPending == 0
}

// decodeEvent returns the event in data if it is job id's.
func decodeEvent(data []byte, id string) (events.StatusEvent, bool) {
	var ev events.StatusEvent
	if !bytes.Contains(data, []byte(id)) {
		return ev, false
	}
	if err := json.Unmarshal(data, &ev); err != nil || ev.JobID != id {
		return ev, false
	}
	return ev, true
}

// eventsStream binds stream JOB_EVENTS, which every way of following jobs
// reads.
func (c *Client) eventsStream(ctx context.Context) (jetstream.Stream, error) {
	stream, err := c.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamEvents, notProvisioned(err))
	}
	return stream, nil
}
