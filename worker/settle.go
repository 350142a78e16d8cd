package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/kvstore"
)

// settle acks, naks or terminates msg according to err (or, for a lost lease,
// leaves it to expire) and names the outcome.
func (r *Runner) settle(msg jetstream.Msg, err error) string {
	var retry *RetryError
	var named *namedError
	log := r.cfg.Log
	if errors.As(err, new(*loggedError)) {
		log = discard
	}
	var outcome string
	var settleErr error
	switch {
	case err == nil:
		r.storageWorks()
		outcome, settleErr = "ok", msg.Ack()
	case errors.Is(err, ErrGaveUp):
		outcome, settleErr = "failed", msg.Ack()
	case errors.Is(err, ErrStale):
		outcome, settleErr = "stale", msg.Ack()
	case errors.Is(err, ErrLeaseLost):
		outcome = "abandoned"
		log.Warn("lease lost: result discarded", "error", err)
	case kvstore.IsStorage(err):
		d := r.pauseFetching()
		outcome, settleErr = "storage", msg.NakWithDelay(d)
		log.Warn("storage full: fetching paused", "pause", d, "error", err)
	case errors.As(err, &retry):
		outcome, settleErr = "retry", msg.NakWithDelay(retry.Delay)
	case errors.Is(err, ErrPermanent):
		outcome, settleErr = "rejected", msg.Term()
		log.Warn("message terminated", "error", err)
	case errors.Is(err, context.Canceled) && r.workCtx.Err() != nil:
		outcome, settleErr = "shutdown", msg.Nak()
	default:
		outcome = "error"
		delivered := 1
		if md, mdErr := msg.Metadata(); mdErr == nil {
			delivered = int(md.NumDelivered)
		}
		settleErr = msg.NakWithDelay(r.cfg.Backoff(delivered))
		log.Error("stage failed", "error", err, "delivered", delivered)
	}
	if errors.As(err, &named) {
		outcome = named.outcome
	}
	if settleErr != nil {
		r.cfg.Log.Warn("settle message", "outcome", outcome, "error", settleErr)
	}
	return outcome
}

// discard takes the lines the runner does not write (Logged).
var discard = slog.New(slog.DiscardHandler)

// settleStarted notes a worker starting its Scope's finish (collecting its
// acknowledgements); the returned func notes it done.
func (r *Runner) settleStarted() func() {
	key := new(struct{})
	r.settleMu.Lock()
	if r.settling == nil {
		r.settling = map[*struct{}]time.Time{}
	}
	r.settling[key] = time.Now()
	r.settleMu.Unlock()
	return func() {
		r.settleMu.Lock()
		delete(r.settling, key)
		r.settleMu.Unlock()
	}
}

// Stuck names the workers whose Scope's finish (waiting for acknowledgements)
// has run longer than Config.StuckAfter, or is nil.
func (r *Runner) Stuck() error {
	if r.cfg.StuckAfter == 0 {
		return nil
	}
	r.settleMu.Lock()
	defer r.settleMu.Unlock()
	n := 0
	for _, since := range r.settling {
		if time.Since(since) > r.cfg.StuckAfter {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d of %d workers stuck waiting for NATS acknowledgements for more than %s",
		r.cfg.Name, n, r.cfg.Concurrency, r.cfg.StuckAfter)
}
