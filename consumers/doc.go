// Package consumers runs the pipeline stages, one file each: prompt.go,
// llmstage.go (design and latex), compile.go, fix.go, and meta.go beside them.
// Each stage consumes durable pull consumers of stream JOBS, one per priority
// queue (events.QueuesOf: jobs.<stage>, jobs.<stage>.high, jobs.<stage>.low;
// prompt has one), driven by a worker.Runner (package worker, the runner of
// every work consumer) that owns fetching, the worker pool (a free worker takes
// the highest-priority waiting ticket), InProgress heartbeats,
// ack/nak-with-delay/term by the kind of the stage's error, metrics and logging;
// runner.go wires each stage onto it. Every change a stage makes to a job is a
// transition of package lifecycle, written by its Executor (transition.go
// holds the claim, the lease and the scope's publishing).
//
// Delivery guarantees. A stage reads the job and its revision from KV, drops a
// ticket that is stale, CAS-sets the job running under a lease, does the work,
// CAS-writes the result with the next hand-off, publishes the next ticket with a
// dedupe id and only then acks. Every job state change is one CAS write followed by
// one event on jobs.status. So a crash at any point loses no job (the unacked
// ticket is redelivered), and no later stage runs twice on the same input: a ticket
// redelivered after its job moved on re-publishes the next ticket (dropped by the
// JOBS duplicates window, or recognised as stale by the next stage), and an LLM
// answer already recorded in the conversation for this hand-off is reused rather
// than asked for again. A redelivered ticket that finds its job moved on also
// re-publishes the job's current event (deduplicated by job and revision), so an
// event lost to a crash after its KV write still reaches watchers. A lease that
// stops being renewed expires, and the next delivery of the ticket takes the job
// over; the worker that lost it discards its result and leaves the delivery
// unsettled, since an ack (applied by stream sequence) would remove the ticket from
// under the new owner. What no ticket will move again (a worker died and its
// ticket is gone, a ticket was lost) is package maintenance's: the sweeper, the
// max-deliveries handler, the janitor and the dependents consumer.
//
// The LLM (docs/llm.md): a wait the provider asks for (*ai.RateLimitedError)
// hands the job back to its queue without counting a retry (lifecycle.RateLimited,
// the ticket naked with that delay); an answer from a fallback model is named in
// the next event (lifecycle.Noted). While the LLM client's circuit breaker is
// open the calls wait inside package ai and the LLM stages (design, latex, fix,
// meta) hold their fetching (Deps.LLMHold, worker.Config.Hold).
//
// The prompt stage makes a job of each request on jobs.prompt as a submit does
// (Deps.Submit, a control.Plane). A job with depends_on waits, blocked and
// without a ticket, until its dependencies have completed (lifecycle.Wake).
//
// Beside the pipeline, the meta stage (consumer meta on jobs.meta) writes a job's
// description and tags. Its ticket goes out with each hand-off to compile whose
// LaTeX is not yet described; it takes no lease, changes neither status nor step,
// emits no event and, after bounded retries or at MaxDeliver, gives up without
// touching the job's status.
//
// Subjects: consumes jobs.prompt, jobs.design|latex|compile|fix with their .high
// and .low queues and jobs.meta; publishes tickets on the same, jobs.status and
// jobs.rejected. Buckets: jobs, conversations, active, pdf_cache, usage (each
// LLM answer's cost, counted before the job's write that records it; see
// usage.go and docs/usage.md) (through kvstore) and object store pdfs.
package consumers
