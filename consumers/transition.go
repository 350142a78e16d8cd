package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// apply is the one way a stage changes a job's state: a CAS write through kvstore,
// then exactly one status event for the new revision. An error from fn writes
// nothing and is returned with the job as read.
func (p *Pipeline) apply(ctx context.Context, id string, fn func(*events.Job) error) (*events.Job, error) {
	j, _, err := p.applyRev(ctx, id, fn)
	return j, err
}

// applyRev is apply, also returning the job's revision.
func (p *Pipeline) applyRev(ctx context.Context, id string, fn func(*events.Job) error) (*events.Job, uint64, error) {
	return p.applyFrom(ctx, id, nil, 0, fn)
}

// applyFrom is applyRev starting from a value of the job the caller holds at
// revision fromRev (see kvstore.From); nil from reads first.
func (p *Pipeline) applyFrom(ctx context.Context, id string, from *events.Job, fromRev uint64, fn func(*events.Job) error) (*events.Job, uint64, error) {
	var before events.Status
	var unchanged bool
	j, rev, err := p.store.Update(ctx, id, func(j *events.Job) error {
		before = j.Status
		err := fn(j)
		unchanged = errors.Is(err, kvstore.ErrNoChange)
		if err == nil {
			j.EventRev = 0 // this write has its event
		}
		return err
	}, kvstore.From(from, fromRev))
	if err != nil || unchanged {
		return j, rev, err
	}
	p.emit(ctx, j, rev, before)
	return j, rev, nil
}

// emitAttempts bounds the publishes of one status event (about 1.5s in all); the
// dedupe id makes a retry after a lost acknowledgement harmless.
const emitAttempts = 5

// emit publishes the status event of j at rev and counts a job that just finished.
func (p *Pipeline) emit(ctx context.Context, j *events.Job, rev uint64, before events.Status) {
	ev := j.Event(rev)
	if before != j.Status && ev.Final() && p.metrics != nil {
		p.metrics.JobsFinished.WithLabelValues(string(j.Status)).Inc()
	}
	data, err := json.Marshal(ev)
	if err == nil {
		err = p.publishEvent(ctx, data, ev.MsgID())
	}
	if err != nil {
		if p.metrics != nil {
			p.metrics.EventPublishErrs.Inc()
		}
		p.log.ErrorContext(ctx, "publish status event", "job_id", j.ID, "status", j.Status, "error", err)
	}
}

// publishEvent publishes one encoded status event: in a stage, without waiting
// for its acknowledgement (see scope); elsewhere, waiting and retrying.
func (p *Pipeline) publishEvent(ctx context.Context, data []byte, msgID string) error {
	if p.publishAsync(ctx, events.SubjectStatus, data, msgID, false) {
		return nil
	}
	return p.publishSync(ctx, events.SubjectStatus, data, msgID)
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

// publishSync publishes and waits for the acknowledgement, retrying with a
// growing pause.
func (p *Pipeline) publishSync(ctx context.Context, subject string, data []byte, msgID string) error {
	for attempt := 1; ; attempt++ {
		_, err := p.js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		if err == nil || attempt == emitAttempts || !sleep(ctx, time.Duration(attempt)*100*time.Millisecond) {
			return err
		}
	}
}

// publishTicket hands the job to its next stage when it expects one. The dedupe id
// (ticketMsgID) makes a re-publish of the same hand-off a no-op inside the
// duplicates window.
//
// A hand-off to compile whose LaTeX is not yet described also goes to the meta
// stage, after the compile ticket so the PDF never waits for it: every place
// that re-publishes a lost hand-off (a redelivered stale ticket, the sweeper, the
// max-deliveries handler) thereby re-publishes a lost meta ticket too.
func (p *Pipeline) publishTicket(ctx context.Context, j *events.Job) error {
	if j.Stage == "" || (j.Status != events.StatusPending && j.Status != events.StatusWaitingAIFix) {
		return nil
	}
	if err := p.sendTicket(ctx, j, j.Queue().Subject(), j.Ticket()); err != nil {
		return err
	}
	if j.Stage == events.StageCompile && j.MetaDue() {
		return p.sendTicket(ctx, j, events.SubjectMeta, j.MetaTicket())
	}
	return nil
}

func (p *Pipeline) sendTicket(ctx context.Context, j *events.Job, subject string, t events.Ticket) error {
	id := ticketMsgID(j, t)
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode ticket %s: %w", id, err)
	}
	if p.publishAsync(ctx, subject, data, id, true) {
		return nil
	}
	if _, err := p.js.Publish(ctx, subject, data, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish ticket %s: %w", id, kvstore.Classify(err))
	}
	return nil
}

// ticketMsgID is the dedupe id of ticket t of job j: the hand-off's own id (job,
// stage, sequence) and the job's incarnation. A re-publish of the same hand-off
// (a redelivered stale ticket, the sweeper, the max-deliveries handler) repeats
// it and is dropped inside the duplicates window; a job created again under the
// id of a deleted one starts its sequence again, but not its incarnation, so its
// first ticket is not taken for the deleted job's. Status events need no such
// part: their id holds the KV revision of the write, which the bucket never
// hands out twice.
func ticketMsgID(j *events.Job, t events.Ticket) string {
	if j.Incarnation == "" { // stored before incarnations
		return t.MsgID()
	}
	return t.MsgID() + ":" + j.Incarnation
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
	var movedOn bool
	from, fromRev := p.recent.take(t.JobID)
	j, rev, err := p.applyFrom(ctx, t.JobID, from, fromRev, func(j *events.Job) error {
		now := time.Now()
		movedOn = j.Seq > t.Seq && j.Status != events.StatusAborted
		switch {
		case j.Seq != t.Seq || j.Stage != t.Stage:
			return ErrStale
		case j.Status == events.StatusRunning && !j.Lease.Expired(now):
			return &RetryError{Delay: j.Lease.ExpiresAt.Sub(now) + 100*time.Millisecond,
				Err: fmt.Errorf("job %s is leased by another worker", j.ID)}
		case j.Status != events.StatusPending && j.Status != events.StatusError &&
			j.Status != events.StatusWaitingAIFix && j.Status != events.StatusRunning:
			return ErrStale
		}
		j.Status = events.StatusRunning
		j.Lease = &events.Lease{Owner: owner, ExpiresAt: now.Add(p.cfg.LeaseTTL)}
		j.Message = message
		return nil
	})
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
			p.reemit(ctx, t.JobID)
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

// reemit publishes the job's current status event again, under the revision of
// the state change it was first published for.
func (p *Pipeline) reemit(ctx context.Context, id string) {
	j, rev, err := p.store.Get(ctx, id)
	if err != nil {
		p.log.WarnContext(ctx, "re-emit status event", "job_id", id, "error", err)
		return
	}
	p.emit(ctx, j, j.StateRevision(rev), j.Status)
}

// finish writes a stage's result if this worker still holds the lease; otherwise
// the result is discarded (errAborted, errLeaseLost).
func (p *Pipeline) finish(ctx context.Context, id, owner string, fn func(*events.Job)) (*events.Job, error) {
	return p.applyHeld(ctx, id, owner, func(j *events.Job) error {
		if err := lost(j, owner); err != nil {
			return err
		}
		j.Lease = nil
		fn(j)
		return nil
	})
}

// applyHeld is apply for the worker owner: when it holds the job in ctx's scope
// the write starts from its last one instead of a read.
func (p *Pipeline) applyHeld(ctx context.Context, id, owner string, fn func(*events.Job) error) (*events.Job, error) {
	h := holdOf(ctx, owner)
	if h == nil {
		return p.apply(ctx, id, fn)
	}
	from, fromRev := h.last()
	j, rev, err := p.applyFrom(ctx, id, from, fromRev, fn)
	if err == nil {
		h.wrote(j, rev)
		if j.Stage != "" && j.Lease == nil {
			p.recent.put(j, rev) // handed on: the next stage may run here
		}
	}
	return j, err
}

func holds(j *events.Job, owner string) bool {
	return j.Status == events.StatusRunning && j.Lease != nil && j.Lease.Owner == owner
}

// advance hands the job to stage as a new hand-off.
func advance(j *events.Job, stage events.Stage, step events.Step, message string) {
	j.Stage = stage
	j.Seq++
	j.Status = events.StatusPending
	j.CurrentStep = step
	j.Message = message
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
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err = p.renew(ctx, id, owner)
		case <-written:
			err = p.stillHolds(ctx, id, owner)
		}
		switch {
		case errors.Is(err, errAborted), errors.Is(err, errLeaseLost):
			cancel(err)
			return
		case err != nil && ctx.Err() == nil:
			p.log.WarnContext(ctx, "check lease", "job_id", id, "error", err)
		}
	}
}

// stillHolds reads job id and reports whether owner still holds its lease.
func (p *Pipeline) stillHolds(ctx context.Context, id, owner string) error {
	j, _, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	return lost(j, owner)
}

// lost is nil while owner holds the job's lease, errAborted once the job was
// aborted, errLeaseLost otherwise.
func lost(j *events.Job, owner string) error {
	switch {
	case j.Status == events.StatusAborted:
		return errAborted
	case !holds(j, owner):
		return errLeaseLost
	}
	return nil
}

// renew extends owner's lease on job id by LeaseTTL; errLeaseLost when owner no
// longer holds it.
func (p *Pipeline) renew(ctx context.Context, id, owner string) error {
	return p.setLeaseExpiry(ctx, id, owner, time.Now().Add(p.cfg.LeaseTTL))
}

func (p *Pipeline) setLeaseExpiry(ctx context.Context, id, owner string, at time.Time) error {
	h := holdOf(ctx, owner)
	var from *events.Job
	var fromRev uint64
	if h != nil {
		from, fromRev = h.last()
	}
	j, rev, err := p.store.Update(ctx, id, func(j *events.Job) error {
		if err := lost(j, owner); err != nil {
			return err
		}
		j.Lease.ExpiresAt = at
		return nil
	}, kvstore.From(from, fromRev))
	if err == nil && h != nil {
		h.wrote(j, rev)
	}
	return err
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
