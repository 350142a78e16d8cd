package ai

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// recordingLimiter keeps what a Client told it.
type recordingLimiter struct {
	mu       sync.Mutex
	waits    []string
	observed []observation
	refuse   error
}

type observation struct {
	model  string
	tokens int
	status int
	header http.Header
}

func (l *recordingLimiter) Wait(_ context.Context, model string, tokens int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tokens <= 0 {
		return errors.New("no token estimate")
	}
	l.waits = append(l.waits, model)
	return l.refuse
}

func (l *recordingLimiter) Observe(model string, tokens, status int, header http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = append(l.observed, observation{model, tokens, status, header})
}

// TestLimiterSeesEveryCallAndItsHeaders: the Limiter is asked before each
// request and told each answer's usage, status and headers, of an error answer
// too; a refusal by Wait sends nothing.
func TestLimiterSeesEveryCallAndItsHeaders(t *testing.T) {
	lim := &recordingLimiter{}
	c, srv := newFakeClient(t, Config{Model: "m1", Limiter: lim}, fakellm.Script(
		fakellm.Reply{Content: "design", PromptTokens: 7, CompletionTokens: 3,
			Header: http.Header{"X-Ratelimit-Remaining-Requests": {"41"}}},
		fakellm.Reply{Status: http.StatusTooManyRequests, Content: "slow down",
			Header: http.Header{"Retry-After": {"2"}}},
	))
	ctx := context.Background()
	if _, err := c.GenerateDesign(ctx, nil, "a worksheet"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if _, err := c.GenerateDesign(ctx, nil, "a worksheet"); !errors.Is(err, ErrTransient) {
		t.Fatalf("second call: got %v, want a transient error", err)
	}
	lim.mu.Lock()
	if len(lim.waits) != 2 || lim.waits[0] != "m1" || len(lim.observed) != 2 {
		t.Fatalf("waits %v, observed %v: want two of each for m1", lim.waits, lim.observed)
	}
	ok, limited := lim.observed[0], lim.observed[1]
	if ok.tokens != 10 || ok.status != http.StatusOK || ok.header.Get("X-Ratelimit-Remaining-Requests") != "41" {
		t.Errorf("answer observed as %+v: want 10 tokens, 200 and its x-ratelimit header", ok)
	}
	if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") != "2" {
		t.Errorf("429 observed as %+v: want 429 with Retry-After 2", limited)
	}
	lim.refuse = context.DeadlineExceeded
	lim.mu.Unlock()
	if _, err := c.GenerateDesign(ctx, nil, "a worksheet"); err == nil {
		t.Fatal("a call the Limiter refused succeeded")
	}
	if n := len(srv.Calls()); n != 2 {
		t.Errorf("the provider got %d requests, want 2: a refused call must send none", n)
	}
}
