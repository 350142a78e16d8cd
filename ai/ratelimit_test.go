package ai

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

func TestProviderWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		wantOK bool
	}{
		{"retry-after seconds", http.Header{"Retry-After": {"2"}}, 2 * time.Second, true},
		{"retry-after fraction", http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond, true},
		{"retry-after zero", http.Header{"Retry-After": {"0"}}, 0, true},
		{"retry-after http date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{"retry-after date passed", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0, true},
		{"retry-after wins over reset", http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset-Requests": {"6m0s"}}, 3 * time.Second, true},
		{"reset requests 1s", http.Header{"X-Ratelimit-Reset-Requests": {"1s"}}, time.Second, true},
		{"reset requests 6m0s", http.Header{"X-Ratelimit-Reset-Requests": {"6m0s"}}, 6 * time.Minute, true},
		{"reset tokens 20ms", http.Header{"X-Ratelimit-Reset-Tokens": {"20ms"}}, 20 * time.Millisecond, true},
		{"reset 1m30.5s", http.Header{"X-Ratelimit-Reset-Tokens": {"1m30.5s"}}, 90*time.Second + 500*time.Millisecond, true},
		{"reset bare seconds", http.Header{"X-Ratelimit-Reset-Tokens": {"7"}}, 7 * time.Second, true},
		{"larger of the two resets", http.Header{"X-Ratelimit-Reset-Requests": {"1s"}, "X-Ratelimit-Reset-Tokens": {"6m0s"}}, 6 * time.Minute, true},
		{"bad retry-after falls to reset", http.Header{"Retry-After": {"soon"}, "X-Ratelimit-Reset-Tokens": {"20ms"}}, 20 * time.Millisecond, true},
		{"negative retry-after ignored", http.Header{"Retry-After": {"-5"}}, 0, false},
		{"NaN retry-after ignored", http.Header{"Retry-After": {"NaN"}}, 0, false},
		{"huge retry-after ignored", http.Header{"Retry-After": {"1e300"}}, 0, false},
		{"bad reset ignored", http.Header{"X-Ratelimit-Reset-Requests": {"six minutes"}, "X-Ratelimit-Reset-Tokens": {"2s"}}, 2 * time.Second, true},
		{"negative reset ignored", http.Header{"X-Ratelimit-Reset-Requests": {"-1s"}}, 0, false},
		{"NaN reset ignored", http.Header{"X-Ratelimit-Reset-Tokens": {"NaN"}}, 0, false},
		{"empty values", http.Header{"Retry-After": {""}, "X-Ratelimit-Reset-Requests": {" "}}, 0, false},
		{"no header", http.Header{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ProviderWait(tt.header, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ProviderWait(%v) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestRateLimitedErrorCarriesTheWait: a 429 or 503 with a hint within
// MaxWait is a *RateLimitedError with the wait, still transient; without a
// hint it is a plain transient error.
func TestRateLimitedErrorCarriesTheWait(t *testing.T) {
	tests := []struct {
		name     string
		reply    fakellm.Reply
		wantWait time.Duration // 0: no *RateLimitedError
	}{
		{"429 retry-after", fakellm.Reply{Status: 429, Header: http.Header{"Retry-After": {"2"}}}, 2 * time.Second},
		{"503 retry-after", fakellm.Reply{Status: 503, Header: http.Header{"Retry-After": {"4"}}}, 4 * time.Second},
		{"429 reset headers", fakellm.Reply{Status: 429, Header: http.Header{"X-Ratelimit-Reset-Requests": {"1s"}, "X-Ratelimit-Reset-Tokens": {"1m30.5s"}}}, 90*time.Second + 500*time.Millisecond},
		{"429 without hint", fakellm.Reply{Status: 429}, 0},
		{"500 with retry-after is not a hint", fakellm.Reply{Status: 500, Header: http.Header{"Retry-After": {"2"}}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFakeClient(t, Config{Model: "m1"}, fakellm.Script(tt.reply))
			_, err := c.GenerateDesign(context.Background(), nil, "a worksheet")
			if !errors.Is(err, ErrTransient) {
				t.Fatalf("error %v: want transient", err)
			}
			var rl *RateLimitedError
			if got := errors.As(err, &rl); got != (tt.wantWait > 0) {
				t.Fatalf("error %v: *RateLimitedError %v, want %v", err, got, tt.wantWait > 0)
			}
			if rl != nil && (rl.Wait != tt.wantWait || rl.Model != "m1") {
				t.Fatalf("rate limited %+v: want wait %s from m1", rl, tt.wantWait)
			}
		})
	}
}

// TestWaitBeyondMaxWait: a wait beyond MaxWait passes the call to the fallback
// model, which answers (Reply says so); with no fallback it is a plain
// transient failure naming LLM_MAX_WAIT.
func TestWaitBeyondMaxWait(t *testing.T) {
	long := fakellm.Reply{Status: 429, Header: http.Header{"Retry-After": {"120"}}}
	h := func(req fakellm.Request) fakellm.Reply {
		if req.Model == "big" {
			return long
		}
		return fakellm.Reply{Content: "an outline"}
	}
	c, srv := newFakeClient(t, Config{Model: "big", MaxWait: time.Minute, Fallbacks: []string{"small"}}, h)
	reply, err := c.GenerateDesign(context.Background(), nil, "a worksheet")
	if err != nil || reply.Model != "small" || !strings.Contains(reply.Fallback, "big: rate limited for 2m0s, more than LLM_MAX_WAIT (1m0s)") {
		t.Fatalf("reply %+v, %v: want small's answer, passing over big for its wait", reply, err)
	}
	if n := len(srv.Calls()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}

	c, _ = newFakeClient(t, Config{Model: "big", MaxWait: time.Minute}, h)
	_, err = c.GenerateDesign(context.Background(), nil, "a worksheet")
	if !errors.Is(err, ErrTransient) || errors.As(err, new(*RateLimitedError)) || !strings.Contains(err.Error(), "more than LLM_MAX_WAIT") {
		t.Fatalf("error %v: want a plain transient failure naming LLM_MAX_WAIT", err)
	}
}
