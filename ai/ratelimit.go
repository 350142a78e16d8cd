package ai

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxWait caps the wait a provider's hint may ask for (LLM_MAX_WAIT).
const DefaultMaxWait = 10 * time.Minute

// RateLimitedError is a 429 or 503 answer that said how long to wait
// (Retry-After, or x-ratelimit-reset-requests / x-ratelimit-reset-tokens). It
// wraps ErrTransient. A caller that waits Wait before it asks again does not
// count the failure against its job.
type RateLimitedError struct {
	Step   string
	Model  string
	Status int
	// Wait is the provider's hint, at most Config.MaxWait.
	Wait time.Duration
	Err  error
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("ai %s: model %s rate limited (%d): next try in %s: %v", e.Step, e.Model, e.Status, e.Wait, e.Err)
}

func (e *RateLimitedError) Unwrap() error { return e.Err }

func (e *RateLimitedError) Is(target error) bool { return target == ErrTransient }

// hintStatus reports whether an answer of status may carry a wait to obey.
func hintStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// ProviderWait is the wait the headers of a 429 or 503 answer ask for, at now:
// Retry-After (seconds, or an HTTP date), else the larger of
// x-ratelimit-reset-requests and x-ratelimit-reset-tokens (OpenAI's "1s",
// "6m0s", "20ms", "1m30.5s"). A value that does not parse, or is negative, is
// ignored; ok is false when no header gives a wait.
func ProviderWait(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	if d, ok := RetryAfter(h.Get("Retry-After"), now); ok {
		return d, true
	}
	for _, name := range []string{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"} {
		if d, err := ParseReset(h.Get(name)); err == nil {
			wait, ok = max(wait, d), true
		}
	}
	return wait, ok
}

// RetryAfter reads a Retry-After value at now: seconds, or an HTTP date (a
// past one is 0). ok is false when it is empty, does not parse, or is negative
// or out of range.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs >= 0 && secs < float64(1<<62)/float64(time.Second) { // NaN too
			return time.Duration(secs * float64(time.Second)), true
		}
		return 0, false
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// ParseReset parses an x-ratelimit-reset-* value: a Go-like duration of
// hours, minutes, seconds and milliseconds ("6m0s", "20ms", "1m30.5s"), or a
// bare number of seconds.
func ParseReset(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("empty")
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs >= 0 && secs < float64(1<<62)/float64(time.Second)) { // NaN too
			return 0, fmt.Errorf("%q out of range", v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", v)
	}
	return d, nil
}
