package lifecycle

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sheetpipe/sheetpipe/events"
)

// Actor is who makes a transition.
type Actor string

const (
	// ByPipeline: a stage or a background loop, on its own.
	ByPipeline Actor = "pipeline"
	// ByUser: a user through the control API (submit, retry, refine, edit, abort).
	ByUser Actor = "user"
	// ByImport: sheetctl import, storing a job of the old system.
	ByImport Actor = "import"
)

// Kind says what a write does besides changing the job.
type Kind int

const (
	// StateChange writes a new state of the job: one status event follows it.
	StateChange Kind = iota
	// Quiet changes no state (a description, an index record): no event, and the
	// job keeps the revision of its last event for a re-emit (EventRev).
	Quiet
	// Lease renews or releases a running job's lease: no event.
	Lease
)

// none is the "status" of a job that does not exist yet.
const none events.Status = ""

// Spec is one named transition of the table: who makes it, the statuses it
// starts from and those it may leave the job in.
type Spec struct {
	Name string
	By   Actor
	Kind Kind
	From []events.Status
	To   []events.Status
}

var (
	pending  = events.StatusPending
	running  = events.StatusRunning
	failed   = events.StatusError
	aiFix    = events.StatusWaitingAIFix
	manual   = events.StatusWaitingManual
	complete = events.StatusCompleted
	aborted  = events.StatusAborted
	unended  = []events.Status{pending, running, failed, aiFix}
	every    = []events.Status{pending, running, failed, aiFix, manual, complete, aborted}
)

// The table: every transition a job can make. Apply refuses a write whose
// statuses it does not list.
var (
	specSubmit = &Spec{Name: "submit", By: ByUser,
		// a valid request (pending, or waiting for its dependencies; waiting_manual
		// when one of them can never complete), an invalid one (error at step prompt)
		From: []events.Status{none}, To: []events.Status{pending, failed, manual}}
	specImport = &Spec{Name: "import", By: ByImport,
		// a job of the old system, stored as it was or resumed at its step
		From: append([]events.Status{none}, every...), To: []events.Status{pending, failed, aiFix, manual, complete, aborted}}
	specClaim = &Spec{Name: "claim", By: ByPipeline,
		// a stage takes the job under a lease (running again: a takeover)
		From: unended, To: []events.Status{running}}
	specRenew = &Spec{Name: "renew lease", By: ByPipeline, Kind: Lease,
		From: []events.Status{running}, To: []events.Status{running}}
	specHandOff = &Spec{Name: "hand off", By: ByPipeline,
		// a stage's result, handed to the next stage
		From: []events.Status{running}, To: []events.Status{pending}}
	specComplete = &Spec{Name: "complete", By: ByPipeline,
		From: []events.Status{running}, To: []events.Status{complete}}
	specCompileFailed = &Spec{Name: "compile failed", By: ByPipeline,
		// to the fix stage, or to a human (manual edit, manual mode, retries spent)
		From: []events.Status{running}, To: []events.Status{aiFix, manual}}
	specFail = &Spec{Name: "fail", By: ByPipeline,
		// a stage's failure: transient (error, retried after a back-off), or
		// parked for a human (refused by the LLM, retries spent)
		From: []events.Status{running}, To: []events.Status{failed, manual}}
	specRateLimited = &Spec{Name: "rate limited", By: ByPipeline,
		// the LLM provider asked for a wait: back to the stage's queue, its
		// ticket redelivered after the wait, no retry counted
		From: []events.Status{running}, To: []events.Status{pending, aiFix}}
	specPark = &Spec{Name: "park for a human", By: ByPipeline,
		// a failed AI fix, an LLM call refused by the job's token budget
		From: []events.Status{running}, To: []events.Status{manual}}
	specRecover = &Spec{Name: "recover", By: ByPipeline,
		// the sweeper hands a stuck job back to its stage (waiting_ai_fix stays)
		From: unended, To: []events.Status{pending, aiFix}}
	specDeadTicket = &Spec{Name: "dead ticket", By: ByPipeline,
		// its ticket hit MaxDeliver
		From: unended, To: []events.Status{manual}}
	specWake = &Spec{Name: "wake", By: ByPipeline,
		// a job waiting for its dependencies: unblocked, blocked again with a new
		// reason, or parked when one can never complete
		From: []events.Status{pending}, To: []events.Status{pending, manual}}
	specExpire = &Spec{Name: "expire", By: ByPipeline,
		// the janitor deletes a finished job untouched for the retention
		From: []events.Status{failed, manual, complete, aborted}, To: []events.Status{none}}
	specIndex = &Spec{Name: "index", By: ByPipeline, Kind: Quiet,
		From: every, To: every}
	specDescribe = &Spec{Name: "describe", By: ByPipeline, Kind: Quiet,
		From: every, To: every}
	specRetry = &Spec{Name: "retry", By: ByUser,
		From: []events.Status{failed, manual}, To: []events.Status{pending, aiFix}}
	specRefine = &Spec{Name: "refine", By: ByUser,
		From: []events.Status{complete, failed, manual}, To: []events.Status{pending}}
	specEditLatex = &Spec{Name: "edit latex", By: ByUser,
		From: []events.Status{pending, failed, aiFix, manual, complete}, To: []events.Status{pending}}
	specAbort = &Spec{Name: "abort", By: ByUser,
		From: []events.Status{pending, running, failed, aiFix, manual}, To: []events.Status{aborted}}
)

// Table is every transition a job can make, in no particular order.
func Table() []Spec {
	specs := []*Spec{specSubmit, specImport, specClaim, specRenew, specHandOff, specComplete,
		specCompileFailed, specFail, specRateLimited, specPark, specRecover, specDeadTicket, specWake, specExpire,
		specIndex, specDescribe, specRetry, specRefine, specEditLatex, specAbort}
	out := make([]Spec, len(specs))
	for i, s := range specs {
		out[i] = *s
	}
	return out
}

// Follows reports whether a job's status event in status from may be followed
// by one in status to, through one of the changes of state the actors make
// ("" is a job not yet created). With no actor named, every transition counts.
func Follows(from, to events.Status, by ...Actor) bool {
	for _, s := range Table() {
		if s.Kind != StateChange || len(by) > 0 && !slices.Contains(by, s.By) {
			continue
		}
		if s.allows(from, to) {
			return true
		}
	}
	return false
}

func (s *Spec) allows(from, to events.Status) bool {
	return slices.Contains(s.From, from) && slices.Contains(s.To, to)
}

// ErrIllegal marks a write the table does not allow; nothing is written.
var ErrIllegal = errors.New("illegal transition")

// IllegalError is a transition that would have left its job in a status the
// table does not allow from the one it was in.
type IllegalError struct {
	JobID      string
	Transition string
	From, To   events.Status
}

func (e *IllegalError) Error() string {
	from := string(e.From)
	if from == "" {
		from = "(new)"
	}
	return fmt.Sprintf("%s: %s of job %s from %s to %s", ErrIllegal, e.Transition, e.JobID, from, e.To)
}

func (e *IllegalError) Is(t error) bool { return t == ErrIllegal }

// check is the table's verdict on spec taking job id from status from to to.
func (s *Spec) check(id string, from, to events.Status) error {
	if !s.allows(from, to) {
		return &IllegalError{JobID: id, Transition: s.Name, From: from, To: to}
	}
	return nil
}
