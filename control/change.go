package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// The control operations below are what users do to jobs (the control API calls
// them). Each is one transition through apply, so it is a CAS write plus one
// status event like any stage's, and a request the job's state does not allow
// fails with events.ErrConflict naming that state. They work in any process,
// whichever stages it runs.

// Submit validates req and creates its job, handed to the design stage (or
// waiting for its dependencies, each of which must exist); it returns the job id
// once the job is stored. A request with a job_id that exists is
// accepted again (nothing new is created) when it asks for the same thing, and
// refused with ErrConflict when it does not. A request over a queue limit is
// refused with a *events.QueueFullError and nothing is stored.
func (p *Plane) Submit(ctx context.Context, req events.JobRequest) (string, error) {
	return p.submit(ctx, req, "", false)
}

// submit is Submit of a job of batch batchID ("" for none); reserved says the
// batch has counted the job against the queue limits already. A job counted
// and not created is given back.
func (p *Plane) submit(ctx context.Context, req events.JobRequest, batchID string, reserved bool) (_ string, err error) {
	counted := reserved
	defer func() {
		if counted && err != nil {
			p.release(ctx, req.UserID, 1)
		}
	}()
	if req.JobID == "" {
		req.JobID = uuid.NewString()
	}
	id, err := events.JobIDOf(req.JobID)
	if err != nil {
		return "", err
	}
	req.JobID = id
	if err := p.validate(ctx, &req); err != nil {
		return "", err
	}
	j := p.newJob(req, nil)
	j.BatchID = batchID
	if !counted {
		if err := p.admit(ctx, map[string]int{j.UserID: 1}); err != nil {
			if _, _, gerr := p.store.Get(ctx, id); gerr == nil && events.AsQueueFull(err) != nil {
				return id, p.resubmitted(ctx, req) // a retry of a submit that was accepted
			}
			return "", err
		}
		counted = true
	}
	if err := p.dependOn(ctx, j); err != nil {
		return "", err
	}
	rev, err := p.x.Create(ctx, j)
	if errors.Is(err, kvstore.ErrExists) {
		p.release(ctx, j.UserID, 1)
		counted = false
		return id, p.resubmitted(ctx, req)
	}
	if err != nil {
		return "", fmt.Errorf("create job %s: %w", id, err)
	}
	counted = false // the job is stored: it counts until it finishes
	ctx, cancel := afterWrite(ctx)
	defer cancel()
	p.Created(ctx, j, rev)
	if err := p.HandOn(ctx, j); err != nil {
		return "", fmt.Errorf("job %s is stored but not yet handed on (submit it again with this job_id): %w", id, err)
	}
	return id, nil
}

// resubmitted handles a submit whose job exists: the same request is a retry of
// the submit (its first hand-off is published again in case that is what failed),
// a different one a conflict.
func (p *Plane) resubmitted(ctx context.Context, req events.JobRequest) error {
	j, _, err := p.store.Get(ctx, req.JobID)
	if err != nil {
		return fmt.Errorf("load job %s: %w", req.JobID, err)
	}
	if !sameRequest(j, req) {
		return fmt.Errorf("%w: job %s already exists with a different request", events.ErrConflict, req.JobID)
	}
	return p.Duplicate(ctx, req.JobID, false)
}

// sameRequest reports whether job j is what req asks for: a submit of it again
// is a retry, not a conflict.
func sameRequest(j *events.Job, req events.JobRequest) bool {
	return j.UserID == req.UserID && j.Prompt == req.Prompt
}

// EditLatex replaces the job's LaTeX with the user's and compiles it
// (lifecycle.EditLatex).
func (p *Plane) EditLatex(ctx context.Context, e events.LatexEdit) (*events.Versioned, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, e.JobID, e.IfRevision, lifecycle.EditLatex(e.Latex))
}

// Retry re-runs the step that failed with a fresh retry budget
// (lifecycle.Retry); a retry of step design re-evaluates the job's
// dependencies.
func (p *Plane) Retry(ctx context.Context, c events.JobChange) (*events.Versioned, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w, err := p.waitOf(ctx, c.JobID)
	if err != nil {
		return nil, err
	}
	return p.control(ctx, c.JobID, c.IfRevision, lifecycle.Retry(w))
}

// Refine has the job's request revised with the user's instruction and the
// worksheet made again (lifecycle.Refine); the job's dependencies are
// re-evaluated as for a retry of step design.
func (p *Plane) Refine(ctx context.Context, r events.Refinement) (*events.Versioned, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	w, err := p.waitOf(ctx, r.JobID)
	if err != nil {
		return nil, err
	}
	return p.control(ctx, r.JobID, r.IfRevision, lifecycle.Refine(r.Instruction, w))
}

// Abort ends a job that has not ended (lifecycle.Abort): a worker running it is
// cancelled and its result discarded.
func (p *Plane) Abort(ctx context.Context, c events.JobChange) (*events.Versioned, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, c.JobID, c.IfRevision, lifecycle.Abort())
}

// waitOf is what the dependencies of job id allow now (a job's depends_on
// never changes, so it is read before the transition).
func (p *Plane) waitOf(ctx context.Context, id string) (lifecycle.Wait, error) {
	j, _, err := p.store.Get(ctx, id)
	if err != nil {
		return lifecycle.Wait{}, known(id, err)
	}
	if len(j.DependsOn) == 0 {
		return lifecycle.Wait{Ready: true}, nil
	}
	w, _, err := p.x.Dependencies(ctx, j.DependsOn)
	return w, err
}

// control applies a user's transition to job id, based on revision ifRev when
// given, and hands the job to the stage it now expects; it returns the job as the
// transition left it.
func (p *Plane) control(ctx context.Context, id string, ifRev *uint64, t lifecycle.Transition) (*events.Versioned, error) {
	ctx, cancel := afterWrite(ctx)
	defer cancel()
	var opts []lifecycle.Option
	if ifRev != nil {
		opts = append(opts, lifecycle.AtRevision(*ifRev))
	}
	job, rev, err := p.x.Apply(ctx, id, t, opts...)
	if err != nil {
		return nil, known(id, err)
	}
	j := &events.Versioned{Job: *job, Revision: rev}
	p.log.InfoContext(ctx, "job changed by user", "job_id", id, "action", t.Name(), "status", j.Status, "step", j.CurrentStep)
	if err := p.HandOn(ctx, &j.Job); err != nil {
		return j, fmt.Errorf("job %s: %s recorded but not yet handed on (the sweeper will): %w", id, t.Name(), err)
	}
	return j, nil
}

// known turns kvstore's not-found into the control API's.
func known(id string, err error) error {
	if errors.Is(err, kvstore.ErrNotFound) {
		return fmt.Errorf("%w: no job %s", events.ErrNotFound, id)
	}
	return err
}

// afterWriteTimeout bounds the event and ticket publishes that follow a user's
// change: as long as a stage's publishes may take (5 attempts of up to 5s).
const afterWriteTimeout = 30 * time.Second

// afterWrite is the context of what must follow a user's change once it is
// written: its event and ticket go out even if the caller hangs up meanwhile.
func afterWrite(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), afterWriteTimeout)
}
