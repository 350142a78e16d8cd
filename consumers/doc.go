// Package consumers runs the pipeline stages. Each stage (prompt, design, latex,
// compile, fix) consumes durable pull consumers of stream JOBS, one per priority
// queue (events.QueuesOf: jobs.<stage>, jobs.<stage>.high, jobs.<stage>.low;
// prompt has one), driven by a worker.Runner (package worker, the runner of
// every work consumer) that owns fetching, the worker pool (a free worker takes
// the highest-priority waiting ticket), InProgress heartbeats,
// ack/nak-with-delay/term by the kind of the stage's error, metrics and logging;
// runner.go wires each stage onto it.
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
// under the new owner. If no ticket is left to do so, the
// sweeper, run by every process, hands a job whose lease expired more than
// SweepGrace ago back to its stage under a new sequence, so the old ticket is
// stale. A message that reaches its consumer's MaxDeliver is deleted from JOBS: a
// ticket first moves its job, if still waiting for it, to waiting_manual (a CAS,
// so every process may handle the advisory); a request is reported on
// jobs.rejected. The janitor, run by every process, deletes a finished job
// (completed, aborted, waiting_manual, or an invalid request) untouched for the
// retention, with a purge guarded by the revision it read, then its
// conversation and PDF, and later any conversation or PDF left without a job.
//
// A job with depends_on waits, blocked and without a ticket, until its
// dependencies have completed (dependency.go). The durable consumer dependents of
// jobs.status wakes it when one of them ends a run, acking each event only after
// that (dependents.go); the sweeper re-checks waiting jobs as a safety net.
//
// Beside the pipeline, the meta stage (consumer meta on jobs.meta) writes a job's
// description and tags. Its ticket goes out with each hand-off to compile whose
// LaTeX is not yet described; it takes no lease, changes neither status nor step,
// emits no event and, after bounded retries or at MaxDeliver, gives up without
// touching the job's status.
//
// Subjects: consumes jobs.prompt, jobs.design|latex|compile|fix with their .high
// and .low queues, jobs.meta and, through consumer dependents of JOB_EVENTS,
// jobs.status; publishes the same (tickets), jobs.status and jobs.rejected;
// subscribes to the advisories
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.*. Buckets: jobs,
// conversations, batches, dependents (through kvstore) and object store pdfs.
//
// A batch (SubmitBatch) fixes all its ids first, stores its record in batches,
// then creates each job as Submit does; sent again with the same batch id it
// creates only the jobs still missing. Its status (Batch, FollowBatch) is read
// from its jobs and their events.
package consumers
