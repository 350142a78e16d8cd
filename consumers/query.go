package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

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

// List returns the jobs that match q, newest first, at most q.Limit of them. It
// reads the whole jobs bucket once.
func (p *Pipeline) List(ctx context.Context, q events.ListQuery) (events.ListReply, error) {
	if err := q.Validate(); err != nil {
		return events.ListReply{}, err
	}
	var jobs []events.JobSummary
	err := p.store.EachJob(ctx, func(_ string, j *kvstore.Job, rev uint64, err error) error {
		if err == nil && (q.Status == "" || j.Status == q.Status) && (q.UserID == "" || j.UserID == q.UserID) {
			jobs = append(jobs, summary(j, rev))
		}
		return nil
	})
	if err != nil {
		return events.ListReply{}, err
	}
	slices.SortFunc(jobs, func(a, b events.JobSummary) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.JobID, b.JobID)
	})
	reply := events.ListReply{Jobs: jobs, Truncated: len(jobs) > q.Limit}
	if reply.Truncated {
		reply.Jobs = jobs[:q.Limit]
	}
	if reply.Jobs == nil {
		reply.Jobs = []events.JobSummary{}
	}
	return reply, nil
}

func summary(j *kvstore.Job, rev uint64) events.JobSummary {
	return events.JobSummary{
		JobID: j.ID, UserID: j.UserID, Status: j.Status, Step: j.CurrentStep, Message: j.Message,
		Prompt: j.Prompt, RetryCount: j.RetryCount, MaxRetries: j.MaxRetries, PDFURL: j.PDFURL,
		Revision: rev, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, Description: j.Description,
	}
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

// Follow sends the job's current state as a status event, then one event per
// state change (the writes that only renew a lease are left out), and closes the
// channel after a final state or when ctx ends.
func (p *Pipeline) Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
	j, _, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	values, err := p.store.Follow(ctx, j.ID)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan events.StatusEvent)
	go func() {
		defer close(out)
		defer cancel()
		var last *events.StatusEvent
		for v := range values {
			ev := v.Event(v.Revision)
			if last != nil && sameState(*last, ev) {
				continue
			}
			last = &ev
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Final() {
				return
			}
		}
	}()
	return out, nil
}

// sameState reports whether two events of a job tell the same state.
func sameState(a, b events.StatusEvent) bool {
	a.Revision, b.Revision = 0, 0
	a.Time = b.Time
	ae, be := a.Error, b.Error
	a.Error, b.Error = nil, nil
	return a == b && (ae == nil) == (be == nil) && (ae == nil || *ae == *be)
}
