// Package fakellm is a test fixture: a scriptable, OpenAI-compatible chat
// completions server built on net/http/httptest.
//
// It serves POST /v1/chat/completions (non-streaming only) with the real OpenAI
// response shape, so github.com/sashabaranov/go-openai (or any OpenAI client) can
// use Server.URL as its base URL. A Handler decides each reply: content, token
// usage, an HTTP error status (answered with an OpenAI error body) or a delay
// that honours the client's cancellation.
//
// # Step detection
//
// Package ai sets the request's "user" field (the OpenAI end-user id) to
// "sheetpipe/<step>", where step is one of design, latex, fix, refine or meta.
// The server strips UserPrefix ("sheetpipe/") and exposes the rest as
// Request.Step; a request without that prefix has an empty Step. The field is
// part of the standard request body, so it survives any OpenAI-compatible
// proxy and needs no parsing of prompt text.
//
// Every request is recorded (Server.Calls, Server.CallsFor) and is safe to inspect
// from the test goroutine while the server runs. Handlers run on server
// goroutines: they must be safe for concurrent use and must not call t.FailNow.
package fakellm
