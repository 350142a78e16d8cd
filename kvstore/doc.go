// Package kvstore owns the state sheetpipe keeps in NATS KV; nobody else
// writes these buckets (the broker package only provisions them):
//
//   - "jobs" (key = job id, value = events.Job JSON): Create; Update, a
//     compare-and-swap that reads, applies a function and writes with the read
//     revision, retrying on jetstream.ErrKeyRevisionMismatch in one bounded loop,
//     so concurrent writers from any number of processes never lose an update.
//     Its options: From (start from a value the caller holds instead of reading),
//     AtRevision (refuse with a *events.StaleError unless the job is at a given
//     revision) and KeepEvent (a write that changes no state keeps the revision of
//     the last status event in EventRev). Describe is the meta stage's write: an
//     Update that may change description, tags, meta_seq, meta_error and usage only and
//     refuses anything else with ErrNotMeta, writing nothing. Delete is a purge
//     guarded by the revision in the same way. CreateImported and ReplaceImported
//     are sheetctl import's writes, which keep the old store's times.
//   - "conversations" (key = conversation id): Converse and ConverseFrom, the
//     same CAS loop; DeleteConversation; PutImportedConversation.
//   - "batches" (key = batch id): CreateBatch; a record is created once and
//     never updated.
//   - "dependents", the reverse index of depends_on (key =
//     "<dependency_id>.<dependent_id>" and a marker "<dependency_id>"):
//     AddDependent, only ever adding, with idempotent puts.
//   - "active", the index of jobs a stage may still act on (key = job id):
//     written before a job gets a stage (Create, Update, Activate), removed by
//     deleting its one message (Deactivate).
//   - "queue" (key = "user.<base64url of user_id>", value = a count in
//     decimal): each user's unfinished jobs for the queue limits of package
//     control (AddQueued with compare-and-swap, SetQueued for its recount);
//     the active index's record of a job holds its user_id for that recount,
//     and ActiveCount reads the index's size from its stream's state.
//   - "usage", each user's LLM usage per day (key "<base64url user>.<day>"):
//     CountUsage, an idempotent CAS count per job and hand-off; UsageOf.
//   - "pdf_cache" (key = the caller's hash of a LaTeX source, value = its PDF):
//     PDFCache.Get and PDFCache.Put; the cache policy is the caller's.
//
// PurgeMarkers removes the delete markers of jobs and conversations through the
// buckets' streams (Stream.Purge by subject and sequence). Every watcher pass
// over a bucket (EachJob, EachUnfinishedJob, EachConversation, PurgeMarkers,
// Dependents) goes through one loop, scan; EachActive lists the active index
// from its stream's state instead (see there). Conflicts are counted in
// sheetpipe_kv_cas_conflicts_total{bucket}. A write the server refuses for want
// of storage fails with events.ErrStorage (a *events.StorageError; Storage classifies any error
// the same way), and StorageErr reports the last such refusal.
package kvstore
