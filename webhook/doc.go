// Package webhook delivers the final status events of jobs that asked for one
// (a request's webhook_url) as signed HTTP POSTs.
//
// Every sheetd with a secret (SHEETPIPE_WEBHOOK_SECRET) runs a Sender on the
// durable pull consumer "webhooks" of stream JOB_EVENTS, filtered to jobs.status;
// the consumer is shared, so each event is handled by one process. The Sender is
// a handler on a worker.Runner (package worker), which owns fetching, the pool of
// Config.Concurrency workers, InProgress heartbeats, settlement and graceful
// stop; the handler's error says how to settle (ack, term, nak with a delay),
// and the handler logs and counts every attempt itself. For a final
// event (events.StatusEvent.Final) the Sender first checks the event against KV
// bucket jobs (package eventcheck): the job must have been in the event's status
// and step at the event's revision, else the event is dropped unsent (forged, or
// too old to check), counted in sheetpipe_events_dropped_total{consumer="webhooks"}.
// It then POSTs the event built from the job's value at that revision, never the
// published bytes, to the job's URL, with an HMAC-SHA256 signature (Sign, Verify)
// and an idempotency key "<job_id>:<revision>" of the verified revision. Delivery
// is at least once: a 2xx acks the event; 5xx, 408, 429, network errors and
// timeouts are retried with exponential back-off (NakWithDelay) until the
// consumer's MaxDeliver; a retry, a re-emitted event or a crash between the POST
// and its ack may deliver the same key again, so receivers deduplicate on it.
//
// Guard keeps webhooks off loopback, private, link-local and every other IANA
// special-purpose address (IPv4-mapped and IPv4-compatible ones judged by the
// IPv4 address they carry; NAT64, 6to4 and Teredo refused whole), both when a request is submitted (CheckURL) and when the POST dials
// (a net.Dialer Control hook), so a name that resolves elsewhere later is refused
// too; redirects are never followed.
package webhook
