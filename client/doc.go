// Package client is a small Go client for sheetpipe, used by sheetctl and by tests.
//
// Submit publishes a job request on jobs.prompt through JetStream (header
// Nats-Msg-Id = job_id) and returns once the JOBS stream has durably accepted it;
// a second submission of the same job_id inside the stream's duplicates window is
// dropped by the stream, and one after it is recognised by the prompt stage, so it
// never creates a second job.
//
// Watch follows one job's status events on jobs.status: it replays them from the
// JOB_EVENTS stream with an ordered consumer and then stays live, so no event is
// missed whether Watch starts before the job exists, while it runs or after it
// finished (as long as JOB_EVENTS still holds its events). Events are delivered in
// revision order, each at most once.
//
// PDF reads the object "<job_id>.pdf" from the object store "pdfs".
//
// It reads stream JOB_EVENTS, KV bucket jobs (only to tell whether a job exists yet)
// and object store pdfs, and writes only to jobs.prompt.
package client
