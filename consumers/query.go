package consumers

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
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// Get returns job id and its revision.
func (p *Pipeline) Get(ctx context.Context, id string) (*kvstore.Job, uint64, error) {
	id, err := events.JobIDOf(id)
	if err != nil {
		return nil, 0, err
	}
	j, rev, err := p.store.Get(ctx, id)
	if err != nil {
		return nil, 0, known(id, err)
	}
	return j, rev, nil
}

// List returns a page of the jobs that match q, newest first, at most q.Limit of
// them, from the in-memory index of the bucket (listindex.go): no job is read
// from NATS for it.
func (p *Pipeline) List(ctx context.Context, q events.ListQuery) (events.ListReply, error) {
	if err := q.Validate(); err != nil {
		return events.ListReply{}, err
	}
	reply := events.ListReply{Jobs: []events.JobSummary{}}
	err := p.index.view(ctx, p.js, func(sorted []*indexEntry) { reply = listPage(sorted, q) })
	return reply, err
}

// PDF returns the PDF of a completed job; ErrNotFound, with the job's state, while
// it has none.
func (p *Pipeline) PDF(ctx context.Context, id string) ([]byte, error) {
	j, _, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.PDFURL == "" {
		return nil, fmt.Errorf("%w: job %s has no PDF yet: it is %s at step %s", events.ErrNotFound, j.ID, j.Status, j.CurrentStep)
	}
	pdf, err := p.pdfs.GetBytes(ctx, j.ID+".pdf")
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: the PDF of job %s is missing from the object store", events.ErrNotFound, j.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("get pdf of job %s: %w", j.ID, err)
	}
	return pdf, nil
}

// Follow sends the job's current state as a status event, then each later event
// of the job from JOB_EVENTS in revision order, and closes the channel after a
// final state or when ctx ends. The events stream's end is read before the job,
// so every change after that read has its event after that point: none is missed
// (KV keeps only a job's latest value, so a watch on it could skip a state).
func (p *Pipeline) Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
	id, err := events.JobIDOf(id)
	if err != nil {
		return nil, err
	}
	stream, from, err := p.eventsEnd(ctx)
	if err != nil {
		return nil, err
	}
	j, rev, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	first := j.Event(rev)
	var msgs jetstream.MessagesContext
	if !first.Final() {
		if msgs, err = statusFrom(ctx, stream, from); err != nil {
			return nil, fmt.Errorf("follow job %s: %w", id, err)
		}
	}
	out := make(chan events.StatusEvent)
	go func() {
		defer close(out)
		if msgs != nil {
			defer msgs.Stop()
			defer context.AfterFunc(ctx, msgs.Stop)() // a reader gone ends the wait at once
		}
		for ev := first; ; {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Final() {
				return
			}
			var ok bool
			if ev, ok = p.nextEvent(ctx, msgs, id, ev.Revision); !ok {
				return
			}
		}
	}()
	return out, nil
}

// followRecheck is how long Follow waits for an event before it reads the job
// itself, in case the event of its final state was never published.
const followRecheck = 15 * time.Second

// nextEvent returns job id's next event with a revision above last: from the
// events stream, or, when that stays silent for followRecheck, the job's final
// state read from KV.
func (p *Pipeline) nextEvent(ctx context.Context, msgs jetstream.MessagesContext, id string, last uint64) (events.StatusEvent, bool) {
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(followRecheck))
		switch {
		case ctx.Err() != nil:
			return events.StatusEvent{}, false
		case errors.Is(err, nats.ErrTimeout):
			if j, rev, err := p.store.Get(ctx, id); err == nil && rev > last && j.Event(rev).Final() {
				return j.Event(rev), true
			}
			continue
		case err != nil:
			return events.StatusEvent{}, false
		}
		var ev events.StatusEvent
		if bytes.Contains(msg.Data(), []byte(id)) && json.Unmarshal(msg.Data(), &ev) == nil &&
			ev.JobID == id && ev.Revision > last {
			return ev, true
		}
	}
}

// eventsEnd binds JOB_EVENTS and returns the sequence its next event will have:
// read before a job, it is where the events of every later change of the job
// start.
func (p *Pipeline) eventsEnd(ctx context.Context) (jetstream.Stream, uint64, error) {
	stream, err := p.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", events.StreamEvents, err)
	}
	return stream, stream.CachedInfo().State.LastSeq + 1, nil
}

// statusFrom reads the status events of stream JOB_EVENTS from sequence from on.
func statusFrom(ctx context.Context, stream jetstream.Stream, from uint64) (jetstream.MessagesContext, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectStatus},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, err
	}
	return cons.Messages()
}
