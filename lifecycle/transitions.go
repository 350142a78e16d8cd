package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// Transition is one named change of a job: a Spec of the table and the change
// itself, a function of the job and the time that changes the job or returns
// an error (nothing is then written). Build one with the functions below and
// write it with Executor.Apply.
type Transition struct {
	spec   *Spec
	change func(j *events.Job, now time.Time) error
}

// Name is the transition's name in the table.
func (t Transition) Name() string { return t.spec.Name }

var (
	// ErrStale means the transition no longer applies: the job moved past the
	// ticket or the state it was meant for. Nothing is written.
	ErrStale = errors.New("job moved on")
	// ErrLost means the worker making the transition no longer holds the job's
	// lease: another took the job over.
	ErrLost = errors.New("lease lost")
	// ErrAborted means the job was aborted while a worker ran it.
	ErrAborted = errors.New("job aborted")
	// ErrNoChange means the transition finds nothing to change; nothing is
	// written and no event published.
	ErrNoChange = kvstore.ErrNoChange
)

// LeasedError means another worker holds a live lease on the job until Until.
type LeasedError struct {
	JobID string
	Until time.Time
}

func (e *LeasedError) Error() string {
	return fmt.Sprintf("job %s is leased by another worker", e.JobID)
}

// Claim takes the job for ticket t under owner's lease, which lasts ttl. A
// ticket whose job moved past it, or ended, is stale; a job another worker
// runs under a live lease is a *LeasedError.
func Claim(t events.Ticket, owner string, ttl time.Duration, message string) Transition {
	return Transition{specClaim, func(j *events.Job, now time.Time) error {
		switch {
		case j.Seq != t.Seq || j.Stage != t.Stage:
			return ErrStale
		case j.Status == events.StatusRunning && !j.Lease.Expired(now):
			return &LeasedError{JobID: j.ID, Until: j.Lease.ExpiresAt}
		case !in(unended, j.Status):
			return ErrStale
		}
		j.Status = events.StatusRunning
		j.Lease = &events.Lease{Owner: owner, ExpiresAt: now.Add(ttl)}
		j.Message = message
		return nil
	}}
}

// Holds reports whether owner holds the job's lease: nil while it does,
// ErrAborted once the job was aborted, ErrLost otherwise.
func Holds(j *events.Job, owner string) error {
	switch {
	case j.Status == events.StatusAborted:
		return ErrAborted
	case j.Status != events.StatusRunning || j.Lease == nil || j.Lease.Owner != owner:
		return ErrLost
	}
	return nil
}

// Renew moves owner's lease to expire at until (now, to release it).
func Renew(owner string, until time.Time) Transition {
	return Transition{specRenew, func(j *events.Job, _ time.Time) error {
		if err := Holds(j, owner); err != nil {
			return err
		}
		j.Lease.ExpiresAt = until
		return nil
	}}
}

// held is a pipeline transition made by owner, the worker that claimed the
// job: it applies only while owner still holds the lease, which it ends.
func held(spec *Spec, owner string, fn func(j *events.Job)) Transition {
	return Transition{spec, func(j *events.Job, _ time.Time) error {
		if err := Holds(j, owner); err != nil {
			return err
		}
		j.Lease = nil
		fn(j)
		return nil
	}}
}

// handOff hands the job to stage as a new hand-off: a new sequence, so every
// older ticket is stale.
func handOff(j *events.Job, stage events.Stage, step events.Step, message string) {
	j.Stage = stage
	j.Resume = ""
	j.Seq++
	j.Status = events.StatusPending
	j.CurrentStep = step
	j.Message = message
}

// park leaves the job to a human: it has no ticket, and a retry resumes it at
// stage ("" to resume at what its step and error say).
func park(j *events.Job, stage events.Stage, message string) {
	j.Status = events.StatusWaitingManual
	j.Stage = ""
	j.Resume = stage
	j.Blocked = false
	j.Lease = nil
	j.Message = message
}

// Designed records the design stage's answer, designed from request (a revised
// one when a refinement was pending), and hands the job to the latex stage.
func Designed(owner, request, design string) Transition {
	return held(specHandOff, owner, func(j *events.Job) {
		if j.Refinement != "" {
			j.RevisedPrompt = request
			j.Refinement = ""
		}
		j.Design = design
		j.RetryCount = 0
		j.ErrorMessage = ""
		handOff(j, events.StageLatex, events.StepLatex, "Design ready; generating LaTeX")
	})
}

// LatexWritten records the latex stage's answer and hands the job to compile.
func LatexWritten(owner, latex string) Transition {
	return held(specHandOff, owner, func(j *events.Job) {
		j.Latex = latex
		j.ManualEdit = false
		j.RetryCount = 0
		j.ErrorMessage = ""
		handOff(j, events.StageCompile, events.StepCompile, "LaTeX ready; compiling")
		j.LatexSeq = j.Seq
	})
}

// Fixed records the LLM's fix of the LaTeX, counts the retry and compiles again.
func Fixed(owner, latex string) Transition {
	return held(specHandOff, owner, func(j *events.Job) {
		j.Latex = latex
		j.RetryCount++
		handOff(j, events.StageCompile, events.StepCompile,
			fmt.Sprintf("AI fix %d/%d applied; compiling", j.RetryCount, j.MaxRetries))
	})
}

// FixFailed parks the job after the LLM failed to give a fix.
func FixFailed(owner string, cause error) Transition {
	return held(specPark, owner, func(j *events.Job) {
		j.ErrorMessage = fmt.Sprintf("AI fix failed: %v", cause)
		park(j, events.StageFix, "AI fix failed")
	})
}

// Completed records the PDF at pdfURL: the job is done.
func Completed(owner, pdfURL string) Transition {
	return held(specComplete, owner, func(j *events.Job) {
		j.Status = events.StatusCompleted
		j.CurrentStep = events.StepDone
		j.PDFURL = pdfURL
		j.ErrorMessage = ""
		j.ErrorLog = nil
		j.Stage = ""
		j.Resume = ""
		j.Message = "PDF ready"
	})
}

// CompileError is a document that did not compile.
type CompileError struct {
	Message, Log, Snippet string
	Line                  int
}

// CompileFailed records a compile error: the job goes to the fix stage while
// its retry budget lasts, else (or after a manual edit, or in manual mode) to
// waiting_manual with the error log.
func CompileFailed(owner string, e CompileError) Transition {
	return held(specCompileFailed, owner, func(j *events.Job) {
		j.ErrorLog = &events.ErrorLog{Log: e.Log, Snippet: e.Snippet, Line: e.Line}
		j.ErrorMessage = e.Message
		where := ""
		if e.Line > 0 {
			where = fmt.Sprintf(" at line %d", e.Line)
		}
		switch {
		case j.ManualEdit || j.Mode == events.ModeManual:
			park(j, "", fmt.Sprintf("Compile failed%s: %s; edit the LaTeX to continue", where, e.Message))
		case j.RetryCount >= j.MaxRetries:
			j.ErrorMessage = "Max retries exceeded: " + e.Message
			park(j, "", "Max retries exceeded")
		default:
			handOff(j, events.StageFix, events.StepCompile,
				fmt.Sprintf("Compile failed%s: %s; asking the LLM for fix %d/%d", where, e.Message, j.RetryCount+1, j.MaxRetries))
			j.Status = events.StatusWaitingAIFix
		}
	})
}

// Failed records a stage's failure: a permanent one (refused) or a spent retry
// budget parks the job for a human, to be retried at stage; a transient one
// counts a retry and leaves the job in error, its ticket to be redelivered
// after backoff(retry count). The job's status tells which happened.
func Failed(owner string, stage events.Stage, cause error, refused bool, backoff func(int) time.Duration) Transition {
	return held(specFail, owner, func(j *events.Job) {
		j.ErrorMessage = fmt.Sprintf("%s failed: %v", stage, cause)
		switch {
		case refused:
			park(j, stage, "LLM request refused; fix the configuration and retry")
		case j.RetryCount >= j.MaxRetries:
			park(j, stage, "Max retries exceeded")
		default:
			j.RetryCount++
			j.Status = events.StatusError
			j.Message = fmt.Sprintf("Transient failure in %s; retry %d/%d in %s", stage, j.RetryCount, j.MaxRetries, backoff(j.RetryCount))
		}
	})
}

// RateLimited hands the job back to stage after the LLM provider asked for a
// wait: pending (waiting_ai_fix for the fix stage) under the same ticket, which
// is redelivered after wait; its retry count stays as it was.
func RateLimited(owner string, stage events.Stage, wait time.Duration) Transition {
	return held(specRateLimited, owner, func(j *events.Job) {
		j.Status = events.StatusPending
		if stage == events.StageFix {
			j.Status = events.StatusWaitingAIFix
		}
		j.Message = fmt.Sprintf("rate limited by the LLM provider; next try in %s", wait.Round(time.Millisecond))
	})
}

// Noted is t with note before the message t leaves, e.g. which fallback model
// answered.
func Noted(t Transition, note string) Transition {
	return Transition{t.spec, func(j *events.Job, now time.Time) error {
		if err := t.change(j, now); err != nil {
			return err
		}
		j.Message = note + ": " + j.Message
		return nil
	}}
}

// Recover hands a stuck job (stuck decides, at now) back to its stage under a
// new sequence, so that any older ticket of it is stale: pending, or still
// waiting_ai_fix, without lease, at the same step.
func Recover(stuck func(j *events.Job, now time.Time) bool, orphan, recovered string) Transition {
	return Transition{specRecover, func(j *events.Job, now time.Time) error {
		if !stuck(j, now) {
			return ErrStale
		}
		j.Message = orphan
		if j.Status == events.StatusRunning {
			j.Message = recovered
		}
		if j.Status != events.StatusWaitingAIFix {
			j.Status = events.StatusPending
		}
		if j.RecoveredFrom == 0 {
			j.RecoveredFrom = j.Seq // its answers serve the new hand-off (Job.RecordedAnswer)
		}
		j.Seq++
		j.Lease = nil
		return nil
	}}
}

// DeadTicket parks the job of ticket t, which hit its consumer's MaxDeliver
// after deliveries, if the job still waits for that ticket. A job that moved
// on is ErrStale; one a live worker runs is a *LeasedError.
func DeadTicket(t events.Ticket, deliveries uint64) Transition {
	return Transition{specDeadTicket, func(j *events.Job, now time.Time) error {
		switch {
		case j.Stage != t.Stage || j.Seq != t.Seq || Finished(j):
			return ErrStale
		case j.Status == events.StatusRunning && !j.Lease.Expired(now):
			return &LeasedError{JobID: j.ID, Until: j.Lease.ExpiresAt}
		}
		j.ErrorMessage = fmt.Sprintf("ticket for %s hit max deliveries (%d)", t.Stage, deliveries)
		park(j, t.Stage, "Delivery failed repeatedly; retry or edit the job")
		return nil
	}}
}

// Wait is what a job's dependencies allow: Ready when they have all completed,
// Failed when one can never complete (why), else Waiting (why).
type Wait struct {
	Ready           bool
	Failed, Waiting string
}

// hold applies w to j, which is to run from step design: handed to design when
// ready, parked when it cannot run, else blocked without a ticket.
func (w Wait) hold(j *events.Job) {
	j.Blocked = false
	switch {
	case w.Ready:
		handOff(j, events.StageDesign, events.StepDesign, "Dependencies completed; waiting for design")
	case w.Failed != "":
		j.CurrentStep = events.StepDesign
		j.ErrorMessage = w.Failed
		park(j, events.StageDesign, "Cannot start: "+w.Failed+"; abort this job")
	default:
		j.Blocked = true
		j.Status = events.StatusPending
		j.CurrentStep = events.StepDesign
		j.Stage = ""
		j.Resume = ""
		j.Message = w.Waiting
	}
}

// Wake applies w to a job that waits for its dependencies: ErrNoChange when
// it no longer waits, or still waits for the same reason.
func Wake(w Wait) Transition {
	return Transition{specWake, func(j *events.Job, _ time.Time) error {
		if !j.Blocked {
			return ErrNoChange
		}
		message := j.Message
		w.hold(j)
		if j.Blocked && j.Message == message {
			return ErrNoChange
		}
		return nil
	}}
}

// Accept makes j, a new job of a valid request, pending at step design, its
// first ticket for the design stage.
func Accept(j *events.Job) {
	j.Status = events.StatusPending
	j.CurrentStep = events.StepDesign
	j.Stage = events.StageDesign
	j.Seq = 1
	j.Message = "Job accepted; waiting for design"
	if j.Provider == "offline" {
		j.Message += " (offline provider: no LLM configured)"
	}
}

// Reject makes j, a new job of a request refused with err, an invalid request:
// in error at step prompt, finished.
func Reject(j *events.Job, err error) {
	j.Status = events.StatusError
	j.CurrentStep = events.StepPrompt
	j.ErrorMessage = err.Error()
	j.Message = "Rejected: " + strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": ")
}

// ResumeImported hands j, a job being imported, to stage, or to an earlier one when j lacks that stage's input
// (LaTeX to compile or fix, a design to write LaTeX from), and says so.
func ResumeImported(j *events.Job, stage events.Stage) string {
	note := ""
	if (stage == events.StageCompile || stage == events.StageFix) && strings.TrimSpace(j.Latex) == "" {
		stage, note = events.StageLatex, "no LaTeX: "
	}
	if stage == events.StageLatex && strings.TrimSpace(j.Design) == "" {
		stage, note = events.StageDesign, "no design: "
	}
	j.Status = events.StatusPending
	j.Stage, j.Seq = stage, 1
	switch stage {
	case events.StageDesign:
		j.CurrentStep = events.StepDesign
	case events.StageLatex:
		j.CurrentStep = events.StepLatex
	default:
		j.CurrentStep = events.StepCompile
		j.LatexSeq = j.Seq
	}
	if stage == events.StageFix {
		j.Status = events.StatusWaitingAIFix
	}
	if note != "" {
		return note + "resumed at " + string(stage)
	}
	return ""
}

// Submitted prepares the new job j, valid and pending at step design, for
// its dependencies (w): it waits for them unless they have all completed.
func Submitted(j *events.Job, w Wait) {
	if !w.Ready {
		w.hold(j)
	}
}

// Index records that the job has a record in the active index, at revision
// rec (a job found without one); ErrNoChange when it is no longer active.
func Index(rec uint64) Transition {
	return Transition{specIndex, func(j *events.Job, _ time.Time) error {
		if !j.Active() {
			return ErrNoChange
		}
		j.ActiveRev = rec
		return nil
	}}
}

// Describe records what the meta stage made of the LaTeX of hand-off seq
// (description and tags, or why it gave up), unless the job no longer waits
// for it (ErrStale).
func Describe(seq uint64, fn func(m *Meta)) Transition {
	return Transition{specDescribe, func(j *events.Job, _ time.Time) error {
		if err := MetaStale(j, seq); err != nil {
			return err
		}
		m := Meta{Description: j.Description, Tags: j.Tags, Error: j.MetaError}
		fn(&m)
		j.Description, j.Tags, j.MetaError = m.Description, m.Tags, m.Error
		j.MetaSeq = seq
		return nil
	}}
}

// MetaStale is why the meta stage's ticket for the LaTeX of hand-off seq no
// longer applies to j (an ErrStale), or nil.
func MetaStale(j *events.Job, seq uint64) error {
	switch {
	case j.Status == events.StatusAborted:
		return fmt.Errorf("%w: job %s is aborted", ErrStale, j.ID)
	case j.LatexSeq != seq:
		return fmt.Errorf("%w: job %s has other LaTeX (hand-off %d, ticket %d)", ErrStale, j.ID, j.LatexSeq, seq)
	case j.MetaSeq == seq:
		return fmt.Errorf("%w: job %s is already described", ErrStale, j.ID)
	}
	return nil
}

// Meta is what the meta stage writes on a job.
type Meta struct {
	Description string
	Tags        []string
	Error       string
}

// The users' transitions. Each refuses, with events.ErrConflict naming the
// job's state, what that state does not allow.

// Retry re-runs the step that failed with a fresh retry budget (and token
// budget), from error
// and waiting_manual, except for a request that was invalid. A retry at step
// design applies w, the job's dependencies (read before: DependsOn never
// changes): refused when one can never complete, blocked while they have not
// all completed.
func Retry(w Wait) Transition {
	return Transition{specRetry, func(j *events.Job, _ time.Time) error {
		if j.Status != events.StatusError && j.Status != events.StatusWaitingManual {
			return conflict(j, "retry")
		}
		if j.CurrentStep == events.StepPrompt {
			return invalidRequest(j, "retry")
		}
		stage := RetryStage(j)
		j.RetryCount = 0
		grantBudget(j)
		if stage == events.StageFix {
			handOff(j, stage, events.StepCompile, "Retry: asking the LLM for a fix")
			j.Status = events.StatusWaitingAIFix
			return nil
		}
		j.ErrorMessage = ""
		j.ErrorLog = nil
		if stage == events.StageDesign {
			if err := gate(j, w, "retry"); err != nil || !w.Ready {
				return err
			}
		}
		handOff(j, stage, j.CurrentStep, fmt.Sprintf("Retry: running %s again", stage))
		return nil
	}}
}

// RetryStage is the stage a retry of j runs: the one it was parked at (or
// handed to, for a job in error), else the one its step names (a compile error
// goes back to the fix stage when the job lets the LLM fix its LaTeX).
func RetryStage(j *events.Job) events.Stage {
	for _, st := range []events.Stage{j.Resume, j.Stage} {
		if st.Valid() && st != events.StagePrompt {
			return st
		}
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

// Refine has the job's request revised with instruction (by the design stage,
// in the job's conversation) and design, LaTeX and PDF made again, from
// completed, error and waiting_manual, with a fresh token budget; w as for
// Retry.
func Refine(instruction string, w Wait) Transition {
	return Transition{specRefine, func(j *events.Job, _ time.Time) error {
		switch {
		case j.Status != events.StatusCompleted && j.Status != events.StatusError && j.Status != events.StatusWaitingManual:
			return conflict(j, "refine")
		case j.CurrentStep == events.StepPrompt:
			return invalidRequest(j, "refine")
		}
		j.Refinement = strings.TrimSpace(instruction)
		j.ManualEdit = false
		grantBudget(j)
		restart(j)
		if err := gate(j, w, "refine"); err != nil || !w.Ready {
			return err
		}
		handOff(j, events.StageDesign, events.StepDesign, "Refinement requested; revising the request")
		return nil
	}}
}

// EditLatex replaces the job's LaTeX with a user's and compiles it; a compile
// failure then waits for the user again rather than asking the LLM. Allowed
// unless the job is running or aborted.
func EditLatex(latex string) Transition {
	return Transition{specEditLatex, func(j *events.Job, _ time.Time) error {
		if j.Status == events.StatusRunning || j.Status == events.StatusAborted {
			return conflict(j, "edit the LaTeX of")
		}
		j.Latex = latex
		j.ManualEdit = true
		restart(j)
		handOff(j, events.StageCompile, events.StepCompile, "LaTeX edited by hand; compiling")
		j.LatexSeq = j.Seq
		return nil
	}}
}

// Abort ends a job that has not ended (waiting_manual included: the user gives
// up on it): a worker running it loses it, and no stage acts on it again.
func Abort() Transition {
	return Transition{specAbort, func(j *events.Job, _ time.Time) error {
		switch {
		case j.Status == events.StatusCompleted || j.Status == events.StatusAborted:
			return conflict(j, "abort")
		case j.Status == events.StatusError && j.CurrentStep == events.StepPrompt:
			return invalidRequest(j, "abort")
		}
		j.Status = events.StatusAborted
		j.Stage = ""
		j.Resume = ""
		j.Blocked = false
		j.Lease = nil
		j.Message = "Aborted by the user"
		return nil
	}}
}

// gate applies w to j, which a user sends back to step design: a job that
// cannot run is refused, one whose dependencies have not all completed waits.
func gate(j *events.Job, w Wait, what string) error {
	switch {
	case w.Failed != "":
		return fmt.Errorf("%w: cannot %s job %s: %s; abort it instead", events.ErrConflict, what, j.ID, w.Failed)
	case !w.Ready:
		w.hold(j)
	}
	return nil
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

// Finished reports whether no stage will act on j again without a user
// (events.Finished of its status and step).
func Finished(j *events.Job) bool { return events.Finished(j.Status, j.CurrentStep) }

func in(list []events.Status, s events.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
