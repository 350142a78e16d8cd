package worker

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// With Config.Window a runner holds up to Window messages of each consumer at
// once instead of one: each waits for a worker in its own goroutine,
// heartbeated, and the slots (slots.go) hand free workers to them by priority
// first, then key by key (Config.Fair) or in arrival order, skipping a key
// that has Config.KeyLimit messages in work. A message whose turn comes
// takes one of its key's places in the cluster (Config.Limiter); when all are
// taken by other processes, it waits again, its key passed over for
// limiterRetry, and keeps its heartbeat.
//
// Delivery is unchanged: every held message is heartbeated from its arrival to
// its settlement, so none is redelivered while it waits its turn; Stop naks
// every held message that has no worker; a pause naks each with the pause's
// delay when its turn comes, without running it.

// limiterRetry is how long a key whose cluster places were all taken is passed
// over before its waiting message asks again.
const limiterRetry = 250 * time.Millisecond

// leaseCallTimeout bounds one call of a Limiter or a Lease.
const leaseCallTimeout = 5 * time.Second

// Limiter holds the places of each key in work across every process sharing
// it: at most its number of messages of one key are in work at once.
type Limiter interface {
	// Take takes one of key's places for owner (a unique id of this hold); nil
	// and no error when every place is taken by a live holder.
	Take(ctx context.Context, key, owner string) (Lease, error)
}

// Lease is one place of a key, held until Release or until its holder stops
// renewing it (it then lapses, so a crashed holder's place frees).
type Lease interface {
	// Renew extends the lease; the runner calls it with every heartbeat.
	Renew(ctx context.Context) error
	// Release gives the place back.
	Release(ctx context.Context) error
}

// hold takes a place in b's window, waiting while the window is full (this
// blocks b's delivery, so at most Window messages of b are held), and waits for
// a worker in its own goroutine.
func (r *Runner) hold(b *binding, msg jetstream.Msg) {
	select {
	case b.held <- struct{}{}:
	case <-r.stopping:
		_ = msg.Nak()
		return
	}
	r.wg.Add(1)
	go func() {
		defer func() { <-b.held; r.wg.Done() }()
		r.turn(b, msg)
	}()
}

// turn waits for msg's turn, heartbeating it, takes its key's place in the
// cluster and runs it.
func (r *Runner) turn(b *binding, msg jetstream.Msg) {
	key := ""
	if r.cfg.Key != nil {
		key = r.cfg.Key(msg)
	}
	hbCtx, stopHB := context.WithCancel(r.workCtx)
	go r.heartbeatLoop(hbCtx, msg, nil)
	w := r.slots.enterKey(b.level, key, nextExpected(msg))
	var lease Lease
	for {
		if !r.waitSlot(w) {
			stopHB()
			_ = msg.Nak()
			return
		}
		select {
		case <-r.stopping:
			r.slots.releaseKey(key)
			stopHB()
			_ = msg.Nak()
			return
		default:
		}
		if d := r.pausedFor(); d > 0 {
			r.slots.releaseKey(key)
			stopHB()
			_ = msg.NakWithDelay(d)
			return
		}
		var ok bool
		if lease, ok = r.take(key); ok {
			break
		}
		w = r.slots.requeue(b.level, key, time.Now().Add(limiterRetry))
	}
	stopHB()
	defer r.slots.releaseKey(key)
	r.run(msg, lease)
}

// waitSlot waits for w's slot (nil: it has one); false when the runner stops
// first.
func (r *Runner) waitSlot(w *slotWaiter) bool {
	if w == nil {
		return true
	}
	select {
	case <-r.stopping:
		r.slots.leave(w)
		return false
	case <-w.ready:
		return true
	}
}

// take takes one of key's places in the cluster: a nil lease when there is no
// Limiter, false when every place is taken (or the Limiter fails).
func (r *Runner) take(key string) (Lease, bool) {
	if r.cfg.Limiter == nil {
		return nil, true
	}
	ctx, cancel := context.WithTimeout(r.workCtx, leaseCallTimeout)
	defer cancel()
	lease, err := r.cfg.Limiter.Take(ctx, key, uuid.NewString())
	if err != nil {
		r.cfg.Log.Warn("take user place", "error", err)
		return nil, false
	}
	return lease, lease != nil
}
