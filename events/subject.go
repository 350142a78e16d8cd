package events

// Subjects and stream names of the public contract.
const (
	StreamJobs   = "JOBS"
	StreamEvents = "JOB_EVENTS"

	SubjectPrompt   = "jobs.prompt"
	SubjectDesign   = "jobs.design"
	SubjectLatex    = "jobs.latex"
	SubjectCompile  = "jobs.compile"
	SubjectFix      = "jobs.fix"
	SubjectStatus   = "jobs.status"
	SubjectRejected = "jobs.rejected"
	// SubjectStatusAgain carries a status event published again (after a
	// crash may have lost it): JOB_EVENTS stores it as jobs.status unless it
	// holds it already (its dedupe id names the job and revision), and a
	// subscriber of jobs.status never receives a repeat of an event.
	SubjectStatusAgain = "jobs.status.again"
)

// Stage names one pipeline consumer. Each stage has one subject and one durable
// consumer of the same name.
type Stage string

const (
	StagePrompt  Stage = "prompt"
	StageDesign  Stage = "design"
	StageLatex   Stage = "latex"
	StageCompile Stage = "compile"
	StageFix     Stage = "fix"
)

// Stages lists every stage in pipeline order.
var Stages = []Stage{StagePrompt, StageDesign, StageLatex, StageCompile, StageFix}

// Subject is the JetStream subject the stage consumes.
func (s Stage) Subject() string { return "jobs." + string(s) }

// Valid reports whether s is one of Stages.
func (s Stage) Valid() bool {
	for _, v := range Stages {
		if v == s {
			return true
		}
	}
	return false
}

// Status is a job's state (exact strings of the contract).
type Status string

const (
	StatusPending       Status = "pending"
	StatusRunning       Status = "running"
	StatusError         Status = "error"
	StatusWaitingManual Status = "waiting_manual"
	StatusWaitingAIFix  Status = "waiting_ai_fix"
	StatusCompleted     Status = "completed"
	StatusAborted       Status = "aborted"
)

// Statuses are every status of the contract, in the order a job meets them.
func Statuses() []Status {
	return []Status{StatusPending, StatusRunning, StatusError, StatusWaitingAIFix,
		StatusWaitingManual, StatusCompleted, StatusAborted}
}

// Finished reports whether a job in status st at step has ended its run: no
// stage acts on it again without a user action (retry, edit, refine). This is
// the one definition of "finished" (batches, the janitor, the final status
// events, the bucket scans all use it): completed, aborted, waiting_manual, and
// an invalid request (error at step prompt).
func Finished(st Status, step Step) bool {
	return FinishedStatus(st) || (st == StatusError && step == StepPrompt)
}

// FinishedStatus reports whether every job in status st is finished, whatever
// its step.
func FinishedStatus(st Status) bool {
	switch st {
	case StatusCompleted, StatusAborted, StatusWaitingManual:
		return true
	}
	return false
}

// Step is the pipeline position reported to users (exact strings of the contract).
type Step string

const (
	StepPrompt  Step = "prompt"
	StepDesign  Step = "design"
	StepLatex   Step = "latex"
	StepCompile Step = "compile"
	StepDone    Step = "done"
)
