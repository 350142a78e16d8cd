package llmlimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
)

// hint is what one answer's headers say about the provider's capacity.
type hint struct {
	notBefore time.Time     // from Retry-After on a 429 or 503; zero: none
	gap       time.Duration // least time between calls until gapUntil; 0: none (capacity not low)
	gapUntil  time.Time
	known     bool // the answer carried x-ratelimit-remaining-* with its reset
}

// readHint reads the answer's Retry-After (on 429 and 503) and OpenAI's
// x-ratelimit-{limit,remaining,reset}-{requests,tokens}. When the remaining
// requests (or tokens, counted in calls of avgTokens) are low — at most a tenth
// of the limit, the header's or else the configured one, or at most lowCalls
// calls when neither is known — the rest is spread over the reset time: a gap
// of reset ÷ (remaining + 1) between calls until the reset.
func readHint(now time.Time, status int, h http.Header, rpm, tpm int, avgTokens int64, maxWait time.Duration) hint {
	var out hint
	if h == nil {
		return out
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, ok := ai.RetryAfter(h.Get("Retry-After"), now); ok {
			out.notBefore = now.Add(min(d, maxWait))
		}
	}
	if gap, reset, ok := lowGap(h, "requests", int64(rpm), 1); ok {
		out.known = true
		if gap > out.gap {
			out.gap, out.gapUntil = gap, now.Add(min(reset, maxWait))
		}
	}
	if gap, reset, ok := lowGap(h, "tokens", int64(tpm), max(avgTokens, 1)); ok {
		out.known = true
		if gap > out.gap {
			out.gap, out.gapUntil = gap, now.Add(min(reset, maxWait))
		}
	}
	return out
}

// lowCalls is how many calls' worth of capacity left counts as low when no
// limit is known.
const lowCalls = 5

// lowGap reads x-ratelimit-{remaining,reset,limit}-kind; ok when remaining and
// reset are both present. gap is 0 unless remaining is low; perCall is the
// units one call uses (1 request, or the average tokens of a call).
func lowGap(h http.Header, kind string, configured, perCall int64) (gap, reset time.Duration, ok bool) {
	remaining, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)), 10, 64)
	if err != nil || remaining < 0 {
		return 0, 0, false
	}
	reset, err = ai.ParseReset(h.Get("X-Ratelimit-Reset-" + kind))
	if err != nil || reset < 0 {
		return 0, 0, false
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Limit-"+kind)), 10, 64)
	if err != nil || limit <= 0 {
		limit = configured
	}
	low := remaining <= lowCalls*perCall
	if limit > 0 {
		low = remaining*10 <= limit
	}
	if !low {
		return 0, reset, true
	}
	calls := remaining/perCall + 1
	return reset / time.Duration(calls), reset, true
}
