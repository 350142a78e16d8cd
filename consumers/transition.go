package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// publisher is the pipeline's lifecycle.Publisher: in a stage's scope it
// publishes without waiting for the acknowledgement (the runner collects it
// before acking the stage's ticket); elsewhere it waits (lifecycle.JetStream).
type publisher struct{ p *Pipeline }

func (pub publisher) Publish(ctx context.Context, subject string, data []byte, msgID string, ticket bool) error {
	if pub.p.publishAsync(ctx, subject, data, msgID, ticket) {
		return nil
	}
	return lifecycle.JetStream{JS: pub.p.js}.Publish(ctx, subject, data, msgID, ticket)
}

// publishAsync publishes in ctx's scope, whose runner collects the
// acknowledgement before it acks the stage's ticket; false when there is no scope
// or the publish could not be sent.
func (p *Pipeline) publishAsync(ctx context.Context, subject string, data []byte, msgID string, ticket bool) bool {
	sc := scopeOf(ctx)
	if sc == nil {
		return false
	}
	ack, err := p.js.PublishAsync(subject, data, jetstream.WithMsgID(msgID))
	if err != nil {
		return false
	}
	sc.addPending(pending{ack: ack, subject: subject, data: data, msgID: msgID, ticket: ticket})
	return true
}

// publishSync publishes a status event and waits for the acknowledgement,
// retrying with a growing pause.
func (p *Pipeline) publishSync(ctx context.Context, subject string, data []byte, msgID string) error {
	return lifecycle.JetStream{JS: p.js}.Publish(ctx, subject, data, msgID, false)
}

// publishTicket hands the job to its next stage when it expects one
// (lifecycle.Executor.HandOn).
func (p *Pipeline) publishTicket(ctx context.Context, j *events.Job) error {
	return p.x.HandOn(ctx, j)
}

// verdict turns a transition's refusal into the settlement of the ticket that
// asked for it.
func verdict(err error) error {
	var le *lifecycle.LeasedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lifecycle.ErrAborted):
		return errAborted
	case errors.Is(err, lifecycle.ErrLost):
		return errLeaseLost
	case errors.Is(err, lifecycle.ErrStale):
		return fmt.Errorf("%w: %w", ErrStale, err)
	case errors.As(err, &le):
		return &RetryError{Delay: time.Until(le.Until) + 100*time.Millisecond, Err: err}
	}
	return err
}

// claim checks a ticket against its job and takes the job's lease. A ticket for a
// job that has moved past it re-publishes the job's current hand-off and is stale;
// a ticket for a job another live worker runs is retried once that lease would
// have expired.
//
// A redelivered ticket that finds its job moved on also re-publishes the job's
// current event: the worker before it may have died between its KV write and
// that event (the event's dedupe id makes this a no-op when it did not).
func (p *Pipeline) claim(ctx context.Context, msg jetstream.Msg, message string) (events.Ticket, *events.Job, string, error) {
	t, err := decodeTicket(msg)
	if err != nil {
		return t, nil, "", err
	}
	owner := uuid.NewString()
	h, err := p.watchClaim(ctx, t.JobID, owner)
	if err != nil {
		return t, nil, "", err
	}
	from, fromRev := p.recent.take(t.JobID)
	fresh := func(was events.Job) {
		if sc := scopeOf(ctx); sc != nil {
			sc.fresh = was.Status == events.StatusPending || was.Status == events.StatusWaitingAIFix
		}
	}
	j, rev, err := p.x.Apply(ctx, t.JobID, lifecycle.Claim(t, owner, p.cfg.LeaseTTL, message),
		lifecycle.From(from, fromRev), lifecycle.Before(fresh))
	err = verdict(err)
	movedOn := j != nil && j.Seq > t.Seq && j.Status != events.StatusAborted
	if h != nil {
		if err == nil {
			h.wrote(j, rev)
			scopeOf(ctx).addHold(owner, h)
		} else {
			h.stop()
		}
	}
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		p.log.WarnContext(ctx, "ticket for unknown job", "job_id", t.JobID, "step", t.Stage)
		return t, nil, "", fmt.Errorf("%w: %w", ErrStale, err)
	case errors.Is(err, ErrStale):
		if redelivered(msg) {
			p.x.Reemit(ctx, t.JobID)
		}
		if movedOn {
			if perr := p.publishTicket(ctx, j); perr != nil {
				return t, nil, "", perr
			}
		}
	}
	return t, j, owner, err
}

// watchClaim starts watching job id's key for a claim by owner in ctx's scope
// (nil without one). It starts before the claim's write, so every later write is
// seen without a read to close a gap.
func (p *Pipeline) watchClaim(ctx context.Context, id, owner string) (*hold, error) {
	if scopeOf(ctx) == nil {
		return nil, nil
	}
	h := &hold{written: make(chan struct{}, 1)}
	stop, err := p.store.WatchLease(id, owner, func(held bool) {
		if !held {
			h.signal()
		}
	})
	if err != nil {
		return nil, err
	}
	h.stop = stop
	return h, nil
}

func redelivered(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && md.NumDelivered > 1
}

// finish writes a stage's result, transition t, if this worker (owner) still
// holds the lease; otherwise the result is discarded (errAborted,
// errLeaseLost). When the worker holds the job in ctx's scope the write starts
// from its last one instead of a read.
func (p *Pipeline) finish(ctx context.Context, id, owner string, t lifecycle.Transition) (*events.Job, error) {
	h := holdOf(ctx, owner)
	if h == nil {
		j, _, err := p.x.Apply(ctx, id, t)
		return j, verdict(err)
	}
	j, rev, err := p.x.Apply(ctx, id, t, lifecycle.From(h.last()))
	if err == nil {
		h.wrote(j, rev)
		if j.Stage != "" && j.Lease == nil {
			p.recent.put(j.ID, j, rev) // handed on: the next stage may run here
		}
	}
	return j, verdict(err)
}

// work runs fn while renewing the job's lease and watching the job's key. When
// another write takes the job from this worker (an abort, a takeover) fn's
// context is cancelled at once and errAborted or errLeaseLost returned. If ctx
// ends (shutdown) the lease is released at once, so whichever process gets the
// ticket next takes the job over without waiting for the lease to expire (another
// running sheetd at once; a lone sheetd restarted on its embedded server when the
// server redelivers the ticket, after AckWait).
func (p *Pipeline) work(ctx context.Context, id, owner string, fn func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := holdOf(ctx, owner)
	if h == nil {
		// Claimed outside a scope: watch from now, and read once so that a
		// change between the claim and the subscription is seen too (the server
		// handles the subscription before that read).
		var err error
		if h, err = p.watchClaim(context.WithValue(ctx, scopeKey{}, &scope{}), id, owner); err != nil {
			return err
		}
		defer h.stop()
		h.signal()
	}
	written := h.written
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.keepLease(wctx, cancel, id, owner, written)
	}()
	err := fn(wctx)
	cancel(nil)
	<-done
	switch cause := context.Cause(wctx); {
	case errors.Is(cause, errAborted), errors.Is(cause, errLeaseLost):
		return cause
	case ctx.Err() != nil:
		p.release(id, owner)
		return ctx.Err()
	}
	return err
}

// keepLease renews owner's lease on job id every third of LeaseTTL and, whenever
// the job's key is written by someone else, checks that owner still holds it; it
// cancels the work with the reason when not.
func (p *Pipeline) keepLease(ctx context.Context, cancel context.CancelCauseFunc, id, owner string, written <-chan struct{}) {
	t := time.NewTicker(p.cfg.LeaseTTL / 3)
	defer t.Stop()
	var recheck <-chan time.Time // a check that failed is made again
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err = p.renew(ctx, id, owner)
		case <-written:
			err = p.stillHolds(ctx, id, owner)
		case <-recheck:
			err = p.stillHolds(ctx, id, owner)
		}
		recheck = nil
		switch {
		case errors.Is(err, errAborted), errors.Is(err, errLeaseLost):
			cancel(err)
			return
		case err != nil && ctx.Err() == nil:
			// The write that signalled is not seen again: a read that failed
			// (a timeout under load) would otherwise leave an abort unnoticed
			// until the next renewal.
			p.log.WarnContext(ctx, "check lease; checking again", "job_id", id, "error", err)
			recheck = time.After(recheckAfter)
		}
	}
}

// recheckAfter is how soon a lease check that failed is made again.
const recheckAfter = 500 * time.Millisecond

// stillHolds reads job id and reports whether owner still holds its lease.
func (p *Pipeline) stillHolds(ctx context.Context, id, owner string) error {
	j, _, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	return verdict(lifecycle.Holds(j, owner))
}

// stillLeased is nil when owner surely holds job id's lease now: by the last
// value it wrote in ctx's scope, its lease runs for more than a third of
// LeaseTTL yet (renewals keep it above two thirds), and no one takes over a
// lease before it expires, nor may a user change a running job but by an abort
// (whose PDF nobody serves). Otherwise it renews the lease, which checks.
func (p *Pipeline) stillLeased(ctx context.Context, id, owner string) error {
	if h := holdOf(ctx, owner); h != nil {
		if j, _ := h.last(); j != nil && lifecycle.Holds(j, owner) == nil &&
			time.Until(j.Lease.ExpiresAt) > p.cfg.LeaseTTL/3 {
			return nil
		}
	}
	return p.renew(ctx, id, owner)
}

// renew extends owner's lease on job id by LeaseTTL; errLeaseLost when owner no
// longer holds it.
func (p *Pipeline) renew(ctx context.Context, id, owner string) error {
	return p.setLeaseExpiry(ctx, id, owner, time.Now().Add(p.cfg.LeaseTTL))
}

func (p *Pipeline) setLeaseExpiry(ctx context.Context, id, owner string, at time.Time) error {
	h := holdOf(ctx, owner)
	var opts []lifecycle.Option
	if h != nil {
		opts = append(opts, lifecycle.From(h.last()))
	}
	j, rev, err := p.x.Apply(ctx, id, lifecycle.Renew(owner, at), opts...)
	if err == nil && h != nil {
		h.wrote(j, rev)
	}
	return verdict(err)
}

// release expires this worker's lease without changing the job's state.
func (p *Pipeline) release(id, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.setLeaseExpiry(ctx, id, owner, time.Now())
	if err != nil && !errors.Is(err, errLeaseLost) && !errors.Is(err, errAborted) {
		p.log.Warn("release lease", "job_id", id, "error", err)
	}
}

func decodeTicket(msg jetstream.Msg) (events.Ticket, error) {
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return t, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return t, nil
}
