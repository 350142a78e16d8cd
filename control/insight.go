package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/eventcheck"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// The reads behind the web console: the pipeline's overview, a job's
// conversation, its event history and the stream of every job's events.

// Overview counts the jobs by status (from the list index), the tickets of every
// queue (consumer info: pending and unacknowledged) and the running jobs by step
// and priority, and lists the latest failures.
func (p *Plane) Overview(ctx context.Context) (events.Overview, error) {
	var o events.Overview
	if err := p.index.view(ctx, p.js, func(sorted []*indexEntry) { o = overview(sorted) }); err != nil {
		return events.Overview{}, err
	}
	for _, q := range events.Queues() {
		load := events.QueueLoad{Stage: q.Stage, Priority: q.Priority, Consumer: q.Durable()}
		c, err := p.js.Consumer(ctx, events.StreamJobs, q.Durable())
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(ctx)
		}
		if err != nil {
			load.Error = err.Error()
		} else {
			load.Waiting, load.InFlight = info.NumPending, info.NumAckPending
		}
		o.Queues = append(o.Queues, load)
	}
	return o, nil
}

// Conversation returns the LLM conversation of job id: an empty one while the job
// has none yet.
func (p *Plane) Conversation(ctx context.Context, id string) (*events.Conversation, error) {
	j, _, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	empty := &events.Conversation{ID: j.ConversationID, JobID: j.ID, Messages: []events.Message{}}
	if j.ConversationID == "" {
		return empty, nil
	}
	c, _, err := p.store.Conversation(ctx, j.ConversationID)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return empty, nil
	case err != nil:
		return nil, fmt.Errorf("conversation of job %s: %w", j.ID, err)
	}
	if c.Messages == nil {
		c.Messages = []events.Message{}
	}
	return c, nil
}

// historySlack starts the scan of a job's events a little before its creation
// time, for clocks of different processes that disagree.
const historySlack = 5 * time.Second

// History returns the status events of job id that JOB_EVENTS still holds (it
// keeps them for its max age), oldest first, ending with the job's current state
// when its event is not among them. It reads the stream from the job's creation
// time to the stream's end as of the call, skipping other jobs' events without
// decoding them.
func (p *Plane) History(ctx context.Context, id string) ([]events.StatusEvent, error) {
	stream, end, err := p.eventsEnd(ctx)
	if err != nil {
		return nil, err
	}
	j, rev, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	current := j.Event(j.StateRevision(rev))
	var out []events.StatusEvent
	if end > 1 {
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.SubjectStatus},
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   new(j.CreatedAt.Add(-historySlack)),
		})
		if err != nil {
			return nil, fmt.Errorf("history of job %s: %w", j.ID, err)
		}
		if out, err = p.jobEvents(ctx, cons, j.ID, end, current.Revision); err != nil {
			return nil, fmt.Errorf("history of job %s: %w", j.ID, err)
		}
	}
	if len(out) == 0 || out[len(out)-1].Revision < current.Revision {
		out = append(out, current)
	}
	return out, nil
}

// jobEvents collects job id's events from cons until the stream sequence end or
// the event of revision last.
//
// Each event is checked against the jobs bucket (package eventcheck): a forged
// one (an unknown revision, or a state the job was not in at its revision) is
// dropped, so it can neither show nor hide the job's real events. An event older
// than the job's kept history (kvstore.JobsHistory writes) cannot be checked and
// is kept as published.
func (p *Plane) jobEvents(ctx context.Context, cons jetstream.Consumer, id string, end, last uint64) ([]events.StatusEvent, error) {
	check := p.eventCheck()
	msgs, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer msgs.Stop()
	defer context.AfterFunc(ctx, msgs.Stop)()
	out := []events.StatusEvent{}
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(2 * time.Second))
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, nats.ErrTimeout):
			return out, nil // nothing more after the start time
		case err != nil:
			return nil, err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		var ev events.StatusEvent
		if bytes.Contains(msg.Data(), []byte(id)) && json.Unmarshal(msg.Data(), &ev) == nil && ev.JobID == id &&
			(len(out) == 0 || ev.Revision > out[len(out)-1].Revision) {
			if checked, keep := p.historyEvent(ctx, check, ev); keep {
				out = append(out, checked)
			}
		}
		if meta.Sequence.Stream+1 >= end || meta.NumPending == 0 || ev.JobID == id && ev.Revision >= last {
			return out, nil
		}
	}
}

// FollowAll sends every job's status events published from now on, until ctx
// ends. Like Follow, it sends only events the jobs bucket confirms, built from
// the job's value (package eventcheck); forged and malformed ones are dropped.
func (p *Plane) FollowAll(ctx context.Context) (<-chan events.StatusEvent, error) {
	check := p.eventCheck()
	stream, from, err := p.eventsEnd(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := statusFrom(ctx, stream, from)
	if err != nil {
		return nil, fmt.Errorf("follow all jobs: %w", err)
	}
	out := make(chan events.StatusEvent)
	go func() {
		defer close(out)
		defer msgs.Stop()
		defer context.AfterFunc(ctx, msgs.Stop)()
		for {
			msg, err := msgs.Next()
			if err != nil || ctx.Err() != nil {
				return
			}
			claim, ok := check.Decode(ctx, msg.Data())
			if !ok {
				continue
			}
			ev, ok := p.verifyEvent(ctx, check, claim)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// historyEvent is ev as the jobs bucket confirms it, or ev as published when it
// is older than the job's kept history; false when it is forged (counted and
// logged by check) or cannot be read now.
func (p *Plane) historyEvent(ctx context.Context, check *eventcheck.Checker, ev events.StatusEvent) (events.StatusEvent, bool) {
	j, err := p.store.JobAt(ctx, ev.JobID, ev.Revision)
	switch {
	case errors.Is(err, kvstore.ErrPastHistory):
		return ev, true
	case errors.Is(err, kvstore.ErrNotFound):
		check.Drop(ctx, ev.JobID, eventcheck.UnknownJob, err)
		return ev, false
	case errors.Is(err, kvstore.ErrNotAtRevision):
		check.Drop(ctx, ev.JobID, eventcheck.Mismatch, err)
		return ev, false
	case err != nil:
		p.log.WarnContext(ctx, "check status event", "job_id", ev.JobID, "error", err)
		return ev, false
	case j.Status != ev.Status || j.CurrentStep != ev.Step:
		check.Drop(ctx, ev.JobID, eventcheck.Mismatch, fmt.Errorf("event says %s/%s, the job was %s/%s at that revision",
			ev.Status, ev.Step, j.Status, j.CurrentStep))
		return ev, false
	}
	return j.Event(ev.Revision), true
}
