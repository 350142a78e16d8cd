package fakellm

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RateLimit is a provider's rate limit in front of a Handler: at most N
// requests in each fixed window of Window (counted from NewRateLimit), a 429
// with Retry-After (whole seconds to the window's end, at least 1) beyond.
// With Hints, every answer also carries OpenAI's x-ratelimit-limit-requests,
// x-ratelimit-remaining-requests and x-ratelimit-reset-requests (the time to
// the window's end, e.g. "1.5s"). It records every request's arrival and
// outcome, for tests and the benchmark. It is safe for concurrent use.
type RateLimit struct {
	N      int
	Window time.Duration
	Hints  bool

	start time.Time
	mu    sync.Mutex
	seen  []Arrival
	count map[int64]int // accepted requests by window index
}

// Arrival is one request the RateLimit saw.
type Arrival struct {
	At      time.Time
	Limited bool // answered 429
}

// NewRateLimit returns a limit of n requests per window.
func NewRateLimit(n int, window time.Duration) *RateLimit {
	return &RateLimit{N: n, Window: window, start: time.Now(), count: map[int64]int{}}
}

// Wrap returns h behind the limit.
func (r *RateLimit) Wrap(h Handler) Handler {
	return func(req Request) Reply {
		r.mu.Lock()
		now := time.Now()
		idx := int64(now.Sub(r.start) / r.Window)
		reset := r.start.Add(time.Duration(idx+1) * r.Window).Sub(now)
		limited := r.count[idx] >= r.N
		if !limited {
			r.count[idx]++
		}
		remaining := r.N - r.count[idx]
		r.seen = append(r.seen, Arrival{At: now, Limited: limited})
		r.mu.Unlock()
		header := http.Header{}
		if r.Hints {
			header.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(r.N))
			header.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(remaining))
			header.Set("X-Ratelimit-Reset-Requests", reset.Round(time.Millisecond).String())
		}
		if limited {
			header.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(reset.Seconds())))))
			return Reply{Status: http.StatusTooManyRequests, Content: "fakellm: rate limit reached for requests", Header: header}
		}
		reply := h(req)
		if reply.Header != nil {
			for k, vs := range reply.Header {
				header[k] = vs
			}
		}
		reply.Header = header
		return reply
	}
}

// Arrivals returns every request seen so far, in arrival order.
func (r *RateLimit) Arrivals() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Arrival(nil), r.seen...)
}

// Counts returns the requests seen so far and how many of them were answered 429.
func (r *RateLimit) Counts() (total, limited int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.seen {
		if a.Limited {
			limited++
		}
	}
	return len(r.seen), limited
}

// PerWindow returns the requests that arrived in each fixed window so far
// (accepted and limited), from the first window on.
func (r *RateLimit) PerWindow() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, a := range r.seen {
		idx := int(a.At.Sub(r.start) / r.Window)
		for len(out) <= idx {
			out = append(out, 0)
		}
		out[idx]++
	}
	return out
}

// MaxInAnyWindow is the largest number of arrivals within any span of length
// d (a sliding window), counting limited ones too: what the client sent.
func MaxInAnyWindow(arrivals []Arrival, d time.Duration) int {
	best, j := 0, 0
	for i := range arrivals {
		for arrivals[i].At.Sub(arrivals[j].At) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
