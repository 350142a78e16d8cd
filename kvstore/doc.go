// Package kvstore owns the job and conversation state in the NATS KV buckets "jobs"
// and "conversations" (key = id, value = JSON), and the reverse index of
// depends_on in "dependents" (key = "<dependency_id>.<dependent_id>"). It is the
// only writer of those buckets. Every job and conversation write is a
// compare-and-swap on the key's revision: Update reads, applies a function and
// writes with the read revision, retrying on jetstream.ErrKeyRevisionMismatch in
// one bounded loop, so concurrent writers from any number of processes never lose
// an update. Conflicts are counted in sheetpipe_kv_cas_conflicts_total{bucket}.
// The index is only ever added to, with idempotent puts.
package kvstore
