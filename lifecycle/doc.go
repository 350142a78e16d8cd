// Package lifecycle is the job state machine: how a job may change, in one
// place.
//
//   - The table (table.go): every named transition (Spec) with who makes it
//     (the pipeline, a user, the import) and the statuses it starts from and
//     may leave a job in. Follows answers whether one status may follow
//     another; the tests' history checks read it.
//   - The transitions (transitions.go): Claim, Renew, Designed, LatexWritten,
//     Fixed, FixFailed, Completed, CompileFailed, Failed, Recover, DeadTicket,
//     Wake, Index, Describe, OverBudget, Retry, Refine, EditLatex, Abort, and Accept/Reject
//     for a new job: each a function of the job and the time that changes the
//     job or returns a typed error (ErrStale, ErrLost, ErrAborted,
//     *LeasedError, ErrNoChange, events.ErrConflict).
//   - Usage (usage.go): Charged makes a transition that records LLM answers
//     count what they cost in the job's usage, in the same write; CheckBudget
//     and OverBudget stop a job at its token budget.
//   - The Executor (apply.go): Apply writes one transition with a CAS on the
//     job's revision, after checking its result against the table (an illegal
//     change is an *IllegalError and writes nothing), then publishes its
//     status event; Create, Import and Expire are the writes of a new, an
//     imported and a deleted job; HandOn publishes the ticket a job expects;
//     Wake re-evaluates a job waiting for its dependencies (dependencies.go).
//
// Stage and Resume (events.Job) mean one thing each: Stage is the ticket that
// may act on the job now (none for a finished job, one parked for a human or
// one waiting for its dependencies, so such a job leaves the active index);
// Resume is the stage a retry of a parked job runs again.
//
// The statuses and steps are the wire contract's (package events), as is the
// one definition of "finished" (events.Finished: completed, aborted,
// waiting_manual, or an invalid request), of a final status event
// (events.StatusEvent.Final, the same) and of "active" (events.Job.Active: a
// job with a ticket, or waiting for its dependencies).
package lifecycle
