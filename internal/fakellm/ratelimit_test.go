package fakellm

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func TestRateLimitAnswers429WithRetryAfterBeyondN(t *testing.T) {
	rl := NewRateLimit(3, time.Minute)
	rl.Hints = true
	s := New(t, rl.Wrap(Script(Reply{Content: "ok"})))
	c := newClient(s)
	for i := range 3 {
		if _, err := chat(t.Context(), c, UserPrefix+"design"); err != nil {
			t.Fatalf("call %d within the limit: %v", i+1, err)
		}
	}
	_, err := chat(t.Context(), c, UserPrefix+"design")
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th call in the window: err %v, want a 429", err)
	}
	if total, limited := rl.Counts(); total != 4 || limited != 1 {
		t.Fatalf("counts %d total, %d limited; want 4 and 1", total, limited)
	}
	if w := rl.PerWindow(); len(w) != 1 || w[0] != 4 {
		t.Fatalf("per window %v, want [4]", w)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	rl := NewRateLimit(2, time.Minute)
	rl.Hints = true
	h := rl.Wrap(Script(Reply{Content: "ok"}))
	first := h(Request{})
	if first.Status != 0 || first.Header.Get("X-Ratelimit-Remaining-Requests") != "1" ||
		first.Header.Get("X-Ratelimit-Limit-Requests") != "2" {
		t.Fatalf("first answer: status %d headers %v", first.Status, first.Header)
	}
	if d, err := time.ParseDuration(first.Header.Get("X-Ratelimit-Reset-Requests")); err != nil || d <= 0 || d > time.Minute {
		t.Fatalf("reset %q: want a duration within the window", first.Header.Get("X-Ratelimit-Reset-Requests"))
	}
	h(Request{})
	third := h(Request{})
	ra, err := strconv.Atoi(third.Header.Get("Retry-After"))
	if third.Status != http.StatusTooManyRequests || err != nil || ra < 1 || ra > 60 {
		t.Fatalf("third answer: status %d, Retry-After %q; want 429 and 1..60 s", third.Status, third.Header.Get("Retry-After"))
	}
}

func TestRateLimitNewWindowAcceptsAgain(t *testing.T) {
	rl := NewRateLimit(1, 200*time.Millisecond)
	h := rl.Wrap(Script(Reply{Content: "ok"}))
	h(Request{})
	if r := h(Request{}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("second call in the window: status %d, want 429", r.Status)
	}
	time.Sleep(250 * time.Millisecond) // into the next window
	if r := h(Request{}); r.Status != 0 {
		t.Fatalf("first call of the next window: status %d, want 200", r.Status)
	}
}

func TestMaxInAnyWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []Arrival {
		var out []Arrival
		for _, m := range ms {
			out = append(out, Arrival{At: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []Arrival
		want int
	}{
		{"none", nil, 0},
		{"spread", at(0, 1000, 2000), 1},
		{"straddling two fixed windows", at(900, 950, 1000, 1050), 4},
		{"edge excluded", at(0, 999, 1000), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaxInAnyWindow(tc.in, time.Second); got != tc.want {
				t.Fatalf("MaxInAnyWindow = %d, want %d", got, tc.want)
			}
		})
	}
}
