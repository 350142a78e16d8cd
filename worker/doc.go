// Package worker is the one runner of every JetStream work consumer of
// sheetpipe: the pipeline stages (package consumers) and the webhook sender
// (package webhook) are handlers on it.
//
// A Runner consumes one or more durable pull consumers of a stream, in order of
// priority, into one pool of Config.Concurrency workers: a worker that frees
// takes the waiting message of the highest priority (slots.go). It owns
// fetching (re-binding a consumer that was deleted and comes back, rebind.go),
// InProgress heartbeats of every message it holds, waiting or in work, and the
// settlement of each message by the kind of its Handler's error (errors.go):
//
//   - nil, ErrStale, ErrGaveUp: ack;
//   - ErrPermanent: term;
//   - *RetryError: nak with its Delay;
//   - ErrLeaseLost: left unsettled, redelivered after AckWait;
//   - a storage refusal (kvstore.IsStorage): nak with a delay and a pause of
//     fetching until storage works again (pause.go);
//   - context.Canceled once the runner cancels its work at Stop: nak;
//   - anything else: nak with Config.Backoff of the delivery count.
//
// With Config.Window the runner holds up to Window messages of each consumer,
// each heartbeated while it waits, and hands free workers out by priority, then
// by key (the user of a ticket, Config.Key) in turns with Config.Fair, with at
// most Config.KeyLimit messages of one key in work, counted across processes by
// a Limiter (KVLimiter: leases in a KV bucket) (fair.go, limiter.go,
// docs/fairness.md).
//
// A runner given Config.Hold (the LLM stages: the LLM client's circuit breaker)
// fetches nothing while Hold reports an error (hold.go); work in flight is not
// touched.
//
// Stop stops fetching, naks what was fetched but not started, waits for the work
// in flight until its context ends, then cancels it, which hands its messages
// back. Consuming and Stuck report a consumer gone, a pause, and workers stuck
// in a Scope's finish, for /readyz.
//
// Delivery is at least once: a message is acked only after its handler
// succeeded (or judged it done for good), and one whose worker dies is
// redelivered after AckWait.
package worker
