package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
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
// refused with ErrConflict when it does not.
func (p *Pipeline) Submit(ctx context.Context, req events.JobRequest) (string, error) {
	return p.submit(ctx, req, "")
}

// submit is Submit of a job of batch batchID ("" for none).
func (p *Pipeline) submit(ctx context.Context, req events.JobRequest, batchID string) (string, error) {
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
	if err := p.dependOn(ctx, j); err != nil {
		return "", err
	}
	rev, err := p.store.Create(ctx, j)
	if errors.Is(err, kvstore.ErrExists) {
		return id, p.resubmitted(ctx, req)
	}
	if err != nil {
		return "", fmt.Errorf("create job %s: %w", id, err)
	}
	ctx, cancel := afterWrite(ctx)
	defer cancel()
	p.created(ctx, j, rev)
	if err := p.handOn(ctx, j); err != nil {
		return "", fmt.Errorf("job %s is stored but not yet handed on (submit it again with this job_id): %w", id, err)
	}
	return id, nil
}

// resubmitted handles a submit whose job exists: the same request is a retry of
// the submit (its first hand-off is published again in case that is what failed),
// a different one a conflict.
func (p *Pipeline) resubmitted(ctx context.Context, req events.JobRequest) error {
	j, _, err := p.store.Get(ctx, req.JobID)
	if err != nil {
		return fmt.Errorf("load job %s: %w", req.JobID, err)
	}
	if !sameRequest(j, req) {
		return fmt.Errorf("%w: job %s already exists with a different request", events.ErrConflict, req.JobID)
	}
	return p.duplicateRequest(ctx, req.JobID, false)
}

// sameRequest reports whether job j is what req asks for: a submit of it again
// is a retry, not a conflict.
func sameRequest(j *events.Job, req events.JobRequest) bool {
	return j.UserID == req.UserID && j.Prompt == req.Prompt
}

// EditLatex replaces the job's LaTeX with the user's and compiles it; a compile
// failure then waits for the user again rather than asking the LLM. Allowed
// unless the job is running or aborted.
func (p *Pipeline) EditLatex(ctx context.Context, e events.LatexEdit) (*events.Versioned, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, e.JobID, e.IfRevision, "edit the LaTeX of", func(j *events.Job) error {
		if j.Status == events.StatusRunning || j.Status == events.StatusAborted {
			return conflict(j, "edit the LaTeX of")
		}
		j.Latex = e.Latex
		j.ManualEdit = true
		restart(j)
		advance(j, events.StageCompile, events.StepCompile, "LaTeX edited by hand; compiling")
		j.LatexSeq = j.Seq
		return nil
	})
}

// Retry re-runs the step that failed with a fresh retry budget. Allowed from
// error and waiting_manual, except for a request that was invalid. A retry of
// step design re-evaluates the job's dependencies: it is refused while one can
// never complete and waits again while they have not all completed.
func (p *Pipeline) Retry(ctx context.Context, c events.JobChange) (*events.Versioned, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, c.JobID, c.IfRevision, "retry", func(j *events.Job) error {
		if j.Status != events.StatusError && j.Status != events.StatusWaitingManual {
			return conflict(j, "retry")
		}
		if j.CurrentStep == events.StepPrompt {
			return invalidRequest(j, "retry")
		}
		stage := retryStage(j)
		j.RetryCount = 0
		if stage == events.StageFix {
			advance(j, stage, events.StepCompile, "Retry: asking the LLM for a fix")
			j.Status = events.StatusWaitingAIFix
			return nil
		}
		j.ErrorMessage = ""
		j.ErrorLog = nil
		if stage == events.StageDesign {
			if ready, err := p.gate(ctx, j, "retry"); !ready {
				return err
			}
		}
		advance(j, stage, j.CurrentStep, fmt.Sprintf("Retry: running %s again", stage))
		return nil
	})
}

// retryStage is the stage that failed: the one the job was handed to, else the
// one its step names (a compile error goes back to the fix stage when the job
// lets the LLM fix its LaTeX).
func retryStage(j *events.Job) events.Stage {
	if j.Stage.Valid() && j.Stage != events.StagePrompt {
		return j.Stage
	}
	switch j.CurrentStep {
	case events.StepDesign:
		return events.StageDesign
	case events.StepLatex:
		return events.StageLatex
	}
	if j.ErrorLog != nil && !j.ManualEdit && j.Mode != events.ModeManual {
		return events.StageFix
	}
	return events.StageCompile
}

// Refine asks for the job's request to be revised with the user's instruction
// (in the job's conversation, which keeps the whole dialogue) and regenerates
// design, LaTeX and PDF from it. Allowed from completed, error and waiting_manual;
// the job's dependencies are re-evaluated as for a retry of step design.
func (p *Pipeline) Refine(ctx context.Context, r events.Refinement) (*events.Versioned, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, r.JobID, r.IfRevision, "refine", func(j *events.Job) error {
		switch {
		case j.Status != events.StatusCompleted && j.Status != events.StatusError && j.Status != events.StatusWaitingManual:
			return conflict(j, "refine")
		case j.CurrentStep == events.StepPrompt:
			return invalidRequest(j, "refine")
		}
		j.Refinement = strings.TrimSpace(r.Instruction)
		j.ManualEdit = false
		restart(j)
		if ready, err := p.gate(ctx, j, "refine"); !ready {
			return err
		}
		advance(j, events.StageDesign, events.StepDesign, "Refinement requested; revising the request")
		return nil
	})
}

// Abort ends a job that has not ended (waiting_manual included: the user gives
// up on it): it becomes aborted, a worker running it is cancelled and its result
// discarded, and no stage acts on it again.
func (p *Pipeline) Abort(ctx context.Context, c events.JobChange) (*events.Versioned, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return p.control(ctx, c.JobID, c.IfRevision, "abort", func(j *events.Job) error {
		switch {
		case j.Status == events.StatusCompleted || j.Status == events.StatusAborted:
			return conflict(j, "abort")
		case j.Status == events.StatusError && j.CurrentStep == events.StepPrompt:
			return invalidRequest(j, "abort")
		}
		j.Status = events.StatusAborted
		j.Stage = ""
		j.Blocked = false
		j.Lease = nil
		j.Message = "Aborted by the user"
		return nil
	})
}

// control applies a user's transition to job id, based on revision ifRev when
// given, and hands the job to the stage it now expects; it returns the job as the
// transition left it.
func (p *Pipeline) control(ctx context.Context, id string, ifRev *uint64, what string, fn func(*events.Job) error) (*events.Versioned, error) {
	ctx, cancel := afterWrite(ctx)
	defer cancel()
	var job *events.Job
	var rev uint64
	var err error
	if ifRev == nil {
		job, rev, err = p.applyRev(ctx, id, fn)
	} else {
		job, rev, err = p.applyAt(ctx, id, *ifRev, fn)
	}
	if err != nil {
		return nil, known(id, err)
	}
	j := &events.Versioned{Job: *job, Revision: rev}
	p.log.InfoContext(ctx, "job changed by user", "job_id", id, "action", what, "status", j.Status, "step", j.CurrentStep)
	if err := p.handOn(ctx, &j.Job); err != nil {
		return j, fmt.Errorf("job %s: %s recorded but not yet handed on (the sweeper will): %w", id, what, err)
	}
	return j, nil
}

// applyAt is applyRev for a user's change based on revision base: fn runs only
// on the job at base, and the CAS write expects base itself, so of two changes
// on the same base one is written and the other, on its retry, finds the job at
// another revision. That one is refused with a *events.StaleError naming the
// current revision, writing nothing and publishing no event.
func (p *Pipeline) applyAt(ctx context.Context, id string, base uint64, fn func(*events.Job) error) (*events.Job, uint64, error) {
	var before events.Status
	j, rev, err := p.store.Update(ctx, id, func(j *events.Job) error {
		before = j.Status
		if err := fn(j); err != nil {
			return err
		}
		j.EventRev = 0 // this write has its event
		return nil
	}, kvstore.AtRevision(base))
	if err != nil {
		return j, rev, err
	}
	p.emit(ctx, j, rev, before)
	return j, rev, nil
}

// restart clears what a finished or failed run left before the job runs again;
// a job that waited for its dependencies no longer does (edited LaTeX needs
// none).
func restart(j *events.Job) {
	j.Blocked = false
	j.RetryCount = 0
	j.ErrorMessage = ""
	j.ErrorLog = nil
	j.PDFURL = ""
	j.Lease = nil
}

func conflict(j *events.Job, what string) error {
	return fmt.Errorf("%w: cannot %s job %s: it is %s at step %s", events.ErrConflict, what, j.ID, j.Status, j.CurrentStep)
}

// invalidRequest refuses what on a job whose request was invalid: that job ended
// at step prompt and only a corrected request can follow it.
func invalidRequest(j *events.Job, what string) error {
	return fmt.Errorf("%w: cannot %s job %s: its request was invalid (%s); submit a corrected one",
		events.ErrConflict, what, j.ID, j.ErrorMessage)
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
