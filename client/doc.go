// Package client is a small Go client for sheetpipe, used by sheetctl and by tests.
//
// The control operations (Submit, Get, EditLatex, Retry, Refine, Abort, List) are
// requests to the control API, the NATS micro service "sheetpipe" that every
// sheetd serves: JSON on subject "sheetpipe.<operation>", answered once the
// service has stored the change. A refusal comes back as an *events.ControlError
// (400 invalid, 404 unknown job, 409 not allowed in the job's state), which
// errors.Is matches against events.ErrInvalid, ErrNotFound and ErrConflict; a
// server where no sheetd runs fails with ErrNoService. The changes take
// IfRevision: a change based on a revision the job has left matches
// events.ErrStale, and events.RevisionOf gives the job's current revision.
//
// Watch follows one job's status events on jobs.status: it replays them from the
// JOB_EVENTS stream with an ordered consumer and then stays live, so no event is
// missed whether Watch starts before the job exists, while it runs or after it
// finished (as long as JOB_EVENTS still holds its events). Events are delivered in
// revision order, each at most once; WatchFrom skips those before a revision.
// WatchAll follows every job's events from the moment it is called.
//
// SubmitBatch sends many requests as one batch (sheetpipe.batch), Batch reads a
// batch's aggregate status (sheetpipe.batch.get) and WatchBatch follows it: the
// status, then a new one after each change of one of its jobs (from jobs.status,
// replayed from where the status was read), until every job has ended.
//
// PDF reads the object "<job_id>.pdf" from the object store "pdfs".
//
// History reads one job's events from JOB_EVENTS up to the stream's end when
// it is called, every run of the job.
//
// Besides the control subjects it reads stream JOB_EVENTS, KV bucket jobs (only to
// tell whether a job exists yet) and object store pdfs; it writes nothing to
// JetStream itself.
package client
