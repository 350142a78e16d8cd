package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// Dependencies (depends_on). A job that depends on others is created only when
// each of them exists, so every dependency is older than its dependent and no
// cycle can form. Before the job is created it is recorded in the dependents
// index under each dependency. Until they have all completed it is pending at
// step design, Blocked and without a ticket. Whenever one of its dependencies
// ends a run, the dependents consumer re-evaluates it (dependents.go); so does
// the code that blocked it, right after its write (a dependency that ended
// between the read and the write is then seen), and the sweeper on every pass.
// Each re-evaluation is a CAS write that applies only to a job still blocked, so
// any number of them hand the job to design once.

// dependencyWait is what a job's dependencies allow it to do now
// (lifecycle.Wait), and the first of them that does not exist.
type dependencyWait struct {
	lifecycle.Wait
	missing string
}

// checkDependencies reads the jobs ids and says what they allow.
func (p *Pipeline) checkDependencies(ctx context.Context, ids []string) (dependencyWait, error) {
	var running, manual []string
	for _, id := range ids {
		d, _, err := p.store.Get(ctx, id)
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			return dependencyWait{missing: id, Wait: lifecycle.Wait{Failed: fmt.Sprintf("dependency %s does not exist", id)}}, nil
		case err != nil:
			return dependencyWait{}, fmt.Errorf("load dependency %s: %w", id, err)
		}
		switch {
		case d.Status == events.StatusCompleted:
		case d.Status == events.StatusAborted:
			return dependencyWait{Wait: lifecycle.Wait{Failed: fmt.Sprintf("dependency %s was aborted", id)}}, nil
		case d.Status == events.StatusError && d.CurrentStep == events.StepPrompt:
			return dependencyWait{Wait: lifecycle.Wait{Failed: fmt.Sprintf("dependency %s was rejected (%s)", id, d.ErrorMessage)}}, nil
		case d.Status == events.StatusWaitingManual:
			manual = append(manual, id)
		default:
			running = append(running, id)
		}
	}
	var why []string
	for _, id := range manual {
		why = append(why, fmt.Sprintf("waiting for dependency %s, which is waiting_manual (needs a manual fix)", id))
	}
	switch len(running) {
	case 0:
	case 1:
		why = append(why, fmt.Sprintf("waiting for dependency %s to complete", running[0]))
	default:
		why = append(why, fmt.Sprintf("waiting for dependencies %s to complete", strings.Join(running, ", ")))
	}
	return dependencyWait{Wait: lifecycle.Wait{Ready: len(why) == 0, Waiting: strings.Join(why, "; ")}}, nil
}

// dependOn prepares the new, valid job j for its dependencies before it is
// created: each must exist (else an ErrInvalid naming it), j is indexed under
// each, and j waits unless they have all completed.
func (p *Pipeline) dependOn(ctx context.Context, j *events.Job) error {
	if len(j.DependsOn) == 0 || j.Status != events.StatusPending {
		return nil
	}
	w, err := p.checkDependencies(ctx, j.DependsOn)
	if err != nil {
		return err
	}
	if w.missing != "" {
		return fmt.Errorf("%w: depends_on: job %s does not exist", events.ErrInvalid, w.missing)
	}
	if err := p.store.AddDependent(ctx, j.ID, j.DependsOn); err != nil {
		return err
	}
	lifecycle.Submitted(j, w.Wait)
	return nil
}

// wake re-evaluates job id if it waits for its dependencies, and hands it to
// design once they have all completed. A job handed on already gets its design
// ticket published again, in case the process that handed it on died before
// publishing (the dedupe id makes that a no-op otherwise).
func (p *Pipeline) wake(ctx context.Context, id string) error {
	j, _, err := p.store.Get(ctx, id)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return nil // indexed by a request whose create had not happened yet
	case err != nil:
		return err
	}
	if j.Blocked {
		w, err := p.checkDependencies(ctx, j.DependsOn)
		if err != nil {
			return err
		}
		j, _, err = p.x.Apply(ctx, id, lifecycle.Wake(w.Wait))
		if err != nil {
			return err
		}
		if !j.Blocked {
			p.log.InfoContext(ctx, "dependencies settled", "job_id", id, "status", j.Status)
		}
	}
	if j.Status == events.StatusPending && j.Stage == events.StageDesign {
		return p.publishTicket(ctx, j)
	}
	return nil
}

// references are the final LaTeX of the jobs j depends on, read now. A
// dependency without LaTeX (or gone) is left out.
func (p *Pipeline) references(ctx context.Context, j *events.Job) ([]ai.Reference, error) {
	var refs []ai.Reference
	for _, id := range j.DependsOn {
		d, _, err := p.store.Get(ctx, id)
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			p.log.WarnContext(ctx, "dependency gone", "job_id", j.ID, "dependency", id)
			continue
		case err != nil:
			return nil, fmt.Errorf("load dependency %s: %w", id, err)
		}
		if d.Latex != "" {
			refs = append(refs, ai.Reference{JobID: id, Latex: d.Latex})
		}
	}
	return refs, nil
}
