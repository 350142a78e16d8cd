package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
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

// Dependencies reads the jobs ids and says what they allow a job that
// depends on them, and which of them does not exist (the first, "" for none).
func (x *Executor) Dependencies(ctx context.Context, ids []string) (w Wait, missing string, err error) {
	var running, manual []string
	for _, id := range ids {
		d, _, err := x.store.Get(ctx, id)
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			return Wait{Failed: fmt.Sprintf("dependency %s does not exist", id)}, id, nil
		case err != nil:
			return Wait{}, "", fmt.Errorf("load dependency %s: %w", id, err)
		}
		switch {
		case d.Status == events.StatusCompleted:
		case d.Status == events.StatusAborted:
			return Wait{Failed: fmt.Sprintf("dependency %s was aborted", id)}, "", nil
		case d.Status == events.StatusError && d.CurrentStep == events.StepPrompt:
			return Wait{Failed: fmt.Sprintf("dependency %s was rejected (%s)", id, d.ErrorMessage)}, "", nil
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
	return Wait{Ready: len(why) == 0, Waiting: strings.Join(why, "; ")}, "", nil
}

// Wake re-evaluates job id if it waits for its dependencies, and hands it to
// design once they have all completed. A job handed on already gets its design
// ticket published again, in case the process that handed it on died before
// publishing (the dedupe id makes that a no-op otherwise).
func (x *Executor) Wake(ctx context.Context, id string) error {
	j, _, err := x.store.Get(ctx, id)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return nil // indexed by a request whose create had not happened yet
	case err != nil:
		return err
	}
	if j.Blocked {
		w, _, err := x.Dependencies(ctx, j.DependsOn)
		if err != nil {
			return err
		}
		j, _, err = x.Apply(ctx, id, Wake(w))
		if err != nil {
			return err
		}
		if !j.Blocked {
			x.log.InfoContext(ctx, "dependencies settled", "job_id", id, "status", j.Status)
		}
	}
	if j.Status == events.StatusPending && j.Stage == events.StageDesign {
		return x.HandOn(ctx, j)
	}
	return nil
}
