// Package ai owns sheetpipe's conversation with the language model: the fixed
// system prompt, the user message of each step, the call itself and the cleaning
// of answers.
//
// Steps are "design" (a plain-text outline from the user's prompt), "latex" (a
// complete document from the outline), "fix" (a corrected document from a
// compile error), "refine" (a revised request from a user instruction) and "meta"
// (a description and tags). Each call sends the whole conversation so far (system
// prompt first) plus one new user turn, and returns in Reply.Turns exactly the
// turns the caller appends to its stored conversation.
//
// The "openai" provider talks to any OpenAI-compatible server through
// github.com/sashabaranov/go-openai, one request per call, with no retries of its
// own: every error wraps ErrTransient (retry later) or ErrPermanent (do not),
// except when the caller's context ends, where it wraps the context's error. Each
// request carries the OpenAI "user" field "sheetpipe/<step>" so servers, logs and
// the test fixture internal/fakellm can tell the steps apart.
//
// A 429 or 503 that says how long to wait (Retry-After, x-ratelimit-reset-*) is a
// *RateLimitedError carrying the wait, capped by Config.MaxWait (ratelimit.go).
// A step asks its fallback models in turn when its model is unknown (404), asks
// for a wait beyond MaxWait or keeps failing with 5xx (fallback.go); Reply.Model
// is the model that answered. A circuit breaker shared by every step opens after
// Config.BreakerThreshold calls in a row that found the provider down; while it
// is open calls wait inside the Client and one probes every
// Config.BreakerProbeInterval (breaker.go), so an outage delays calls instead of
// failing them. Available and Hold report it (docs/llm.md).
//
// The "offline" provider needs no model and no network: it deterministically
// renders a valid worksheet from the prompt (its count, topic, word list, grade
// and refinements; titled as an offline placeholder), so
// the pipeline runs end to end without an API key. User text is always passed
// through EscapeLatex before it enters LaTeX.
//
// The package touches no NATS subject, bucket or store.
package ai
