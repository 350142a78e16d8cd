package fakellm

import (
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Request is one chat completion request as the server received it.
type Request struct {
	Model    string    // requested model
	Messages []Message // every message, in order (system prompt first)
	User     string    // the raw "user" field, e.g. "sheetpipe/design"
	Step     string    // User without its "sheetpipe/" prefix; "" when absent
	N        int       // 1-based index of this call among all calls to the server
}

// Message is one chat message of a Request.
type Message struct {
	Role    string
	Content string
}

// LastUser returns the content of the last message with role "user", or "".
func (r Request) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Reply is what the server answers to one Request.
type Reply struct {
	Status           int           // HTTP status; 0 means 200. Non-200 sends an OpenAI error body
	Content          string        // assistant message content; for an error status, the error message
	Delay            time.Duration // wait before answering; cut short when the client goes away
	PromptTokens     int           // usage.prompt_tokens
	CompletionTokens int           // usage.completion_tokens
	RawBody          string        // when set, sent verbatim (with Status) instead of any JSON body
	Header           http.Header   // extra answer headers, e.g. Retry-After or x-ratelimit-*
}

// Handler decides the Reply to a Request. It runs on a server goroutine.
type Handler func(req Request) Reply

// Script returns a Handler that answers the n-th call it sees with replies[n-1]
// and every call after the last reply with the last reply again. It panics when
// replies is empty.
func Script(replies ...Reply) Handler {
	if len(replies) == 0 {
		panic("fakellm: Script needs at least one reply")
	}
	var (
		mu   sync.Mutex
		next int
	)
	return func(Request) Reply {
		mu.Lock()
		defer mu.Unlock()
		r := replies[next]
		if next < len(replies)-1 {
			next++
		}
		return r
	}
}

// AnyStep is the ByStep key whose Handler answers steps that have no entry of
// their own.
const AnyStep = "*"

// ByStep returns a Handler that dispatches on Request.Step. A step with no entry
// goes to m[AnyStep] when present, otherwise it gets a 400 error naming the step,
// so a missing script fails loudly.
func ByStep(m map[string]Handler) Handler {
	m = maps.Clone(m)
	return func(req Request) Reply {
		if h, ok := m[req.Step]; ok {
			return h(req)
		}
		if h, ok := m[AnyStep]; ok {
			return h(req)
		}
		return Reply{
			Status:  http.StatusBadRequest,
			Content: fmt.Sprintf("fakellm: no handler for step %q", req.Step),
		}
	}
}
