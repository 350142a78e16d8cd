package llmlimit

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// state is one model's value in the bucket. Times are UnixNano of the clock of
// the process that wrote them.
type state struct {
	// Req is the theoretical arrival time of the next request (RPM).
	Req int64 `json:"req,omitempty"`
	// Tok is the theoretical arrival time of the next token (TPM).
	Tok int64 `json:"tok,omitempty"`
	// NotBefore: no call starts earlier (a 429's Retry-After).
	NotBefore int64 `json:"not_before,omitempty"`
	// Gap is the least time between two calls while GapUntil is ahead (the
	// provider's remaining capacity spread over its reset time).
	Gap      int64 `json:"gap,omitempty"`
	GapUntil int64 `json:"gap_until,omitempty"`
}

// pace is what one reservation is measured against.
type pace struct {
	reqInterval time.Duration // 1 min ÷ RPM; 0: no request limit
	tokInterval time.Duration // 1 min ÷ TPM per token; 0: no token limit
	tolerance   time.Duration // how far ahead of the pace a call may start (the burst)
}

// reserve returns the earliest slot at or after now for a call of tokens
// tokens (plus extra, the process's pending correction, charged to the token
// pace alone) and the state with that slot taken.
func (p pace) reserve(s state, now time.Time, tokens, extra int64) (time.Time, state) {
	n := now.UnixNano()
	tol := int64(p.tolerance)
	slot := max(n, s.NotBefore)
	if p.reqInterval > 0 {
		slot = max(slot, s.Req-tol)
	}
	if p.tokInterval > 0 {
		slot = max(slot, s.Tok-tol)
	}
	if s.Gap > 0 && slot < s.GapUntil {
		// The slot after a gapped call is kept in NotBefore.
		s.NotBefore = max(s.NotBefore, slot+s.Gap)
	}
	if p.reqInterval > 0 {
		s.Req = max(s.Req, slot) + int64(p.reqInterval)
	}
	if p.tokInterval > 0 {
		s.Tok = max(max(s.Tok, slot)+(tokens+extra)*int64(p.tokInterval), slot)
	}
	return time.Unix(0, slot), s
}

// modelKey is model's key in the bucket: "model.<name>" when the name is of
// letters, digits, '-' and '_' only, else the name with every other character
// replaced by '_' and a hash of the real name appended, so keys stay valid and
// distinct.
func modelKey(model string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, model)
	if clean == model && model != "" {
		return "model." + model
	}
	sum := sha256.Sum256([]byte(model))
	return "model." + clean + "." + hex.EncodeToString(sum[:6])
}
