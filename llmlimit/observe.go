package llmlimit

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Observe takes the provider's answer into account: the tokens it reported
// correct this process's token charge, and its rate-limit headers, when they
// change the shared hints, are written to the model's state.
func (l *Limiter) Observe(name string, tokens int, status int, header http.Header) {
	m := l.model(name)
	m.mu.Lock()
	var avg int64
	if m.estN > 0 {
		avg = m.estSum / m.estN
	}
	if l.pace.tokInterval > 0 {
		m.pending += int64(tokens) - avg
	}
	shared := hint{gap: time.Duration(m.gap), gapUntil: time.Unix(0, m.until)}
	m.mu.Unlock()
	now := time.Now()
	h := readHint(now, status, header, l.cfg.RPM, l.cfg.TPM, avg, l.cfg.MaxHintWait)
	if !h.notBefore.IsZero() || (h.known && changed(shared, h, now)) {
		l.writeHint(m, h)
	}
}

// changed reports whether hint h is worth a write over the shared one: a gap
// appears, ends, or moves by more than a quarter.
func changed(shared, h hint, now time.Time) bool {
	active := shared.gap > 0 && shared.gapUntil.After(now)
	switch {
	case h.gap == 0:
		return active
	case !active:
		return true
	}
	diff := h.gap - shared.gap
	return diff > shared.gap/4 || -diff > shared.gap/4
}

// hintTimeout bounds the write of one hint (Observe has no context).
const hintTimeout = 2 * time.Second

// writeHint merges h into the model's shared state: a later NotBefore wins;
// the gap is the newest answer's.
func (l *Limiter) writeHint(m *model, h hint) {
	ctx, cancel := context.WithTimeout(context.Background(), hintTimeout)
	defer cancel()
	for range 5 {
		s, rev, err := l.load(ctx, m)
		if err != nil {
			break
		}
		if !h.notBefore.IsZero() {
			s.NotBefore = max(s.NotBefore, h.notBefore.UnixNano())
		}
		if h.known {
			s.Gap, s.GapUntil = int64(h.gap), h.gapUntil.UnixNano()
			if h.gap == 0 {
				s.GapUntil = 0
			} else {
				// The next call starts a gap after this answer.
				s.NotBefore = max(s.NotBefore, time.Now().Add(h.gap).UnixNano())
			}
		}
		err = l.store(ctx, m, s, rev)
		if err == nil {
			m.mu.Lock()
			m.gap, m.until = s.Gap, s.GapUntil
			if !h.notBefore.IsZero() {
				m.notBefore = max(m.notBefore, h.notBefore.UnixNano())
			}
			if h.gap > 0 {
				m.next = max(m.next, time.Now().Add(h.gap).UnixNano())
			}
			m.mu.Unlock()
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			l.cfg.Log.Warn("llm rate limit: provider hint not shared", "key", m.key, "error", err)
			return
		}
	}
}
