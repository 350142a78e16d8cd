// Package broker owns sheetpipe's NATS side: it starts the embedded JetStream server
// (when no NATS_URL is given), connects to a server or cluster, and declares every
// JetStream resource of the contract: streams JOBS and JOB_EVENTS; the durable
// pull consumers prompt, design, latex, compile, fix (one per priority queue:
// design, design_high, design_low...) and meta on JOBS; the durable consumers
// webhooks and dependents of jobs.status on JOB_EVENTS; KV buckets jobs,
// conversations, batches, dependents, active and pdf_cache; and object store
// pdfs.
//
// Provision is idempotent and safe when several sheetd instances start at once:
// each resource is created or updated to the same configuration, and a create that
// races another is retried.
//
// The embedded server runs with a disk guard (disk.go): when its data dir's file
// system is nearly full it makes the server refuse writes at once (a storage
// error, events.ErrStorage) instead of writing the disk full, and once space is
// back it lifts that and clears any stream's write error by restarting JetStream
// in place.
package broker
