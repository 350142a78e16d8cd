// Package llmlimit is the rate limit of LLM calls shared by every sheetd on one
// NATS system: LLM_RPM requests and LLM_TPM tokens per minute per model. A
// *Limiter implements ai.Limiter.
//
// # Shared state
//
// Each model has one key in the KV bucket llm_ratelimit (memory storage,
// history 1, created by New when absent). Its value is the state of a GCRA
// (generic cell rate algorithm, the "virtual scheduling" token bucket): for
// requests and for tokens, the theoretical arrival time of the next call (a
// UnixNano time that moves one interval, 1 min ÷ RPM, per request and one
// token interval, 1 min ÷ TPM, per token), plus the provider's hints: a time
// before which no call may start (after a 429 with Retry-After) and a gap
// between calls until the provider's reset time (when x-ratelimit-remaining-*
// ran low). A call reserves its slot with one Get and one compare-and-swap
// Update of that key (a revision mismatch reads and retries), then sleeps
// locally until the slot. Calls of one process queue on a per-model lock
// before the swap, so concurrent callers in a process do not race each other
// on the key. Nothing is held between calls: a crashed process leaves no lease
// behind, only the slots it had reserved and did not use.
//
// Token counts: Wait charges the caller's estimate; Observe adds the
// difference between what the provider reported and the average estimate to
// the next reservation of that process, so the charge matches the provider's
// count over many calls without a write per answer.
//
// See docs/ratelimit.md for the design's limits (clock skew, crash, bucket
// loss).
package llmlimit
