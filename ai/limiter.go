package ai

import (
	"context"
	"net/http"
)

// Limiter paces the calls of every Client that shares it, e.g. a rate limit
// held by all sheetd on one NATS system (LLM_RPM, LLM_TPM). A Client calls Wait
// before each request to the provider and Observe after each answer, error
// answers included. The offline provider calls neither.
type Limiter interface {
	// Wait blocks until a request of about tokens tokens (prompt estimate) may
	// be sent to model, or ctx ends (its error is returned).
	Wait(ctx context.Context, model string, tokens int) error
	// Observe reports the outcome of one request to model: the tokens the
	// provider reported it used (0 when it reported none, e.g. an error), the
	// HTTP status (0 when no answer came) and the answer's headers (nil when
	// none came), from which x-ratelimit-remaining-* can be read.
	Observe(model string, tokens int, status int, header http.Header)
}

// headerKey is the context key of a call's *answer.
type headerKey struct{}

// answer is what the transport saw of one call's HTTP answer.
type answer struct {
	status int
	header http.Header
}

// recordingTransport keeps the status and headers of each answer in the
// *answer its request's context carries: go-openai's errors hold no headers, and
// Retry-After and x-ratelimit-* come in the headers of both answers and errors.
type recordingTransport struct{ next http.RoundTripper }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if a, ok := req.Context().Value(headerKey{}).(*answer); ok && resp != nil {
		a.status, a.header = resp.StatusCode, resp.Header.Clone()
	}
	return resp, err
}

// withAnswer returns ctx carrying a fresh *answer for the transport to fill, or
// ctx itself when it carries one already (the caller reads it after the call).
func withAnswer(ctx context.Context) (context.Context, *answer) {
	if a, ok := ctx.Value(headerKey{}).(*answer); ok {
		return ctx, a
	}
	a := &answer{}
	return context.WithValue(ctx, headerKey{}, a), a
}

// estimateTokens is a rough prompt size for a Limiter's Wait: a token per four
// bytes of the messages.
func estimateTokens(msgs []string) int {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return n/4 + 1
}
