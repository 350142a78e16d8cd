package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/eventcheck"
)

// Get returns job id and its revision.
func (p *Plane) Get(ctx context.Context, id string) (*events.Job, uint64, error) {
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
func (p *Plane) List(ctx context.Context, q events.ListQuery) (events.ListReply, error) {
	if err := q.Validate(); err != nil {
		return events.ListReply{}, err
	}
	reply := events.ListReply{Jobs: []events.JobSummary{}}
	err := p.index.view(ctx, p.js, func(sorted []*indexEntry) { reply = listPage(sorted, q) })
	return reply, err
}

// PDF returns the PDF of a completed job; ErrNotFound, with the job's state, while
// it has none.
func (p *Plane) PDF(ctx context.Context, id string) ([]byte, error) {
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
// (a watch of the job's key could skip a state a quick next write replaced).
// Every event is checked against the jobs bucket first (package eventcheck) and
// sent as the job's value at its revision says; a forged or malformed one is
// dropped, so it neither shows nor ends the stream.
func (p *Plane) Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
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
	check := p.eventCheck()
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
			if ev, ok = p.nextEvent(ctx, msgs, check, id, ev.Revision); !ok {
				return
			}
		}
	}()
	return out, nil
}

// followRecheck is how long Follow waits for an event before it reads the job
// itself, in case the event of its final state was never published.
const followRecheck = 15 * time.Second

// nextEvent returns job id's next verified event with a revision above last:
// from the events stream, or, when that stays silent for followRecheck, the
// job's final state read from KV.
func (p *Plane) nextEvent(ctx context.Context, msgs jetstream.MessagesContext, check *eventcheck.Checker, id string, last uint64) (events.StatusEvent, bool) {
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
		if !bytes.Contains(msg.Data(), []byte(id)) {
			continue // another job's
		}
		claim, ok := check.Decode(ctx, msg.Data())
		if !ok || claim.JobID != id || claim.Revision <= last {
			continue
		}
		if ev, ok := p.verifyEvent(ctx, check, claim); ok {
			return ev, true
		}
	}
}

// eventCheck is the checker of the events the service streams to clients.
func (p *Plane) eventCheck() *eventcheck.Checker {
	return eventcheck.New("sse", p.store, p.log, p.metrics)
}

// verifyEvent is claim as the jobs bucket confirms it; false when it is dropped
// or cannot be read now (a final state then comes from the recheck).
func (p *Plane) verifyEvent(ctx context.Context, check *eventcheck.Checker, claim events.StatusEvent) (events.StatusEvent, bool) {
	ev, _, ok, err := check.Verify(ctx, claim)
	if err != nil {
		p.log.WarnContext(ctx, "check status event", "job_id", claim.JobID, "error", err)
	}
	return ev, ok
}

// eventsEnd binds JOB_EVENTS and returns the sequence its next event will have:
// read before a job, it is where the events of every later change of the job
// start.
func (p *Plane) eventsEnd(ctx context.Context) (jetstream.Stream, uint64, error) {
	stream, err := p.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", events.StreamEvents, err)
	}
	return stream, stream.CachedInfo().State.LastSeq + 1, nil
}

// followInactive is how long the server keeps a follow's consumer after its
// reader stopped pulling without deleting it (a process that died).
const followInactive = 10 * time.Second

// statusFrom reads the status events of stream JOB_EVENTS from sequence from on,
// through an ordered consumer that Stop deletes.
func statusFrom(ctx context.Context, stream jetstream.Stream, from uint64) (jetstream.MessagesContext, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{events.SubjectStatus},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		InactiveThreshold: followInactive,
	})
	if err != nil {
		return nil, err
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	return &followMsgs{MessagesContext: msgs, stream: stream, cons: cons}, nil
}

// followMsgs are the messages of a follow's ordered consumer; Stop also deletes
// the consumer, which the library leaves to the server's inactivity clean-up.
type followMsgs struct {
	jetstream.MessagesContext
	stream jetstream.Stream
	cons   jetstream.Consumer
	once   sync.Once
}

func (m *followMsgs) Stop() {
	m.once.Do(func() {
		m.MessagesContext.Stop()
		info := m.cons.CachedInfo()
		if info == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A failure leaves the consumer to followInactive.
		_ = m.stream.DeleteConsumer(ctx, info.Name)
	})
}
