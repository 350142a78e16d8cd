// Package maintenance runs the loops every sheetd process runs beside its
// stages (Start, Loops.Stop), each with its own config and only the parts it
// needs; every change they make to a job is a lifecycle transition.
//
//   - The sweeper (sweeper.go) recovers jobs no ticket will move again: a
//     running job whose lease expired more than Grace ago (its worker died and
//     the ticket is gone), a waiting job whose ticket was lost; it hands each
//     back to its stage under a new sequence, and re-checks jobs waiting for
//     their dependencies. It reads the active index (kvstore.BucketActive), so a
//     pass costs what the jobs in flight cost.
//   - The max-deliveries handler (deadletter.go) subscribes to
//     $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.*: a dead ticket parks its
//     job for a human (if the job still waits for it) and leaves JOBS; a dead
//     request is reported on jobs.rejected.
//   - The janitor (janitor.go), unless the retention is 0, deletes finished jobs
//     untouched for the retention with a purge guarded by the revision it read,
//     then their conversation and PDF, and later orphans and delete markers.
//   - The dependents consumer (dependents.go) follows jobs.status through the
//     durable consumer dependents of JOB_EVENTS (no acks) and wakes the jobs
//     that wait for a job whose run ended.
//
// Any number of processes run them at once: each change is a compare-and-swap,
// so one wins and the others find nothing left to do.
package maintenance
