// Package kvstore owns the job and conversation state in the NATS KV buckets "jobs"
// and "conversations", and the batch records in "batches" (key = id, value =
// JSON). It is the only writer of those buckets; a batch record is created once
// and never updated. Every write is a compare-and-swap on the key's revision: Update reads,
// applies a function and writes with the read revision, retrying on
// jetstream.ErrKeyRevisionMismatch in one bounded loop, so concurrent writers from
// any number of processes never lose an update. Deleting a job is a purge guarded
// by its revision in the same way. Conflicts are counted in
// sheetpipe_kv_cas_conflicts_total{bucket}. The reverse index of depends_on is in
// "dependents" (key = "<dependency_id>.<dependent_id>"); it is only ever added to,
// with idempotent puts. A write the server refuses for want of storage fails
// with ErrStorage (a *StorageError; Storage classifies any error the same way),
// and StorageErr reports the last such refusal.
package kvstore
