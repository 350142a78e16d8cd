// Package control answers what users ask of jobs; the api package (micro
// service and HTTP) calls its Plane.
//
//   - Submit (submit.go, change.go): a request's job is built (Prepare: valid,
//     invalid, or waiting for its dependencies, each of which must exist),
//     created, announced and handed to its first stage. The prompt stage makes
//     the jobs of jobs.prompt through the same Plane. A request with a job_id
//     that exists creates nothing: the same request is accepted again, another
//     refused with events.ErrConflict.
//   - Batches (batch.go, batchfollow.go): a batch fixes all its ids first, stores
//     its record in bucket batches, then creates each job as Submit does; sent
//     again with the same batch id it creates only the jobs still missing. Its
//     status is read from its jobs and their events.
//   - Changes (change.go): retry, refine, edit LaTeX and abort, each one
//     lifecycle transition (optionally at the revision the user read:
//     if_revision), followed by its event and the ticket it hands on.
//   - Queries (query.go, insight.go, listindex.go, listpage.go): get, list
//     (from an in-memory index of the jobs bucket), PDF, follow (status events
//     checked against KV, package eventcheck), history, conversation, overview;
//     usage (usage.go): a user's LLM usage over a period, from the per-user
//     daily counters (bucket usage), never from the jobs.
//   - Import (import.go, importplan.go): jobs of the old system, stored as they
//     were or resumed at their step.
//   - Queue limits (limits.go): a submission (one job, a batch whole, or a
//     request on jobs.prompt through Prepare) that would pass
//     SHEETPIPE_MAX_QUEUED or SHEETPIPE_MAX_QUEUED_PER_USER is refused with an
//     events.QueueFullError and stores nothing (on jobs.prompt: a job in error
//     "queue full: ..."); per-user counts in bucket queue, recounted from the
//     active index; Queue answers sheetpipe.queue.
//
// It works in any process, whichever stages that process runs. Subjects:
// publishes tickets and jobs.status; reads JOB_EVENTS. Buckets: jobs,
// conversations, batches, dependents, active, queue, usage (read) (through
// kvstore) and object store pdfs.
package control
