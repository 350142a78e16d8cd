package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Queue limits (docs/limits.md). A job counts as unfinished from its creation
// until it has no stage left (completed, aborted, waiting_manual, or refused):
// exactly while it has a record in the active index.
//
//   - The total is the number of records in the active index, read from its
//     stream's state (one request, never a scan), at most totalFresh old plus
//     what this process admitted since, and read anew for a submission that
//     would reach the last tenth of the limit. It is checked, not reserved:
//     submissions admitted at the same moment by different requests can
//     together pass the limit by at most the jobs those requests carry (a
//     batch's included), and other processes' admissions within totalFresh
//     are seen late only while the total is below nine tenths of the limit.
//   - Each user's count is a tally in bucket queue (kvstore.AddQueued): a
//     submission reserves its jobs with compare-and-swap before they are
//     created and gives back those not created; Update's hook takes one off
//     when a job finishes and adds one when a user's action reopens it,
//     written within flushEvery, one update per user. The per-user limit is
//     exact while the tally is. A process serializes its own updates of one
//     user's count (stripes), so they never conflict with each other.
//   - The tally drifts when a process dies between a job's write and its
//     count's (one job per such crash). Every RecountEvery each process
//     recounts from the active index and repairs a user's count that has not
//     changed for a whole interval (the same revision at the start of two
//     passes): a busy user's count is repaired at its next quiet interval.
//
// Imported jobs are not reserved: the recount counts them.

// Defaults of the queue limits.
const (
	DefaultMaxQueued        = 100_000
	DefaultMaxQueuedPerUser = 10_000
	DefaultRecountEvery     = time.Minute
	// queueRetryAfter is the Retry-After, in seconds, of a refusal.
	queueRetryAfter = 30
	// countTimeout bounds a count update made after its request ended.
	countTimeout = 10 * time.Second
)

// queue is the plane's part for the queue limits.
type queue struct {
	max, maxPerUser int64 // negative: no limit
	every           time.Duration

	mu    sync.Mutex
	top   []events.UserQueue // the users with most unfinished jobs, most first
	topAt time.Time
	prev  map[string]uint64 // each user's count revision at the start of the last pass

	cancel context.CancelFunc
	done   chan struct{}

	// stripes serialize this process's count updates of one user (by a hash of
	// the user id), so that its own submissions never conflict on the key.
	stripes [64]sync.Mutex

	// total caches the active index's size (read at totalAt) plus the jobs this
	// process admitted since (admitTotal).
	totalMu sync.Mutex
	total   int64
	totalAt time.Time

	// deltas holds the finished (-1) and reopened (+1) jobs per user not yet
	// written; the flush loop writes them every flushEvery.
	deltaMu sync.Mutex
	deltas  map[string]int64
}

// totalFresh bounds the age of the cached total, and flushEvery the delay of a
// finished job's count update.
const (
	totalFresh = time.Second
	flushEvery = 50 * time.Millisecond
)

// startQueue registers the tally's hook on the store and starts the recount
// loop (its first pass at once).
func (p *Plane) startQueue() {
	p.queue.max = cmp.Or(p.cfg.MaxQueued, DefaultMaxQueued)
	p.queue.maxPerUser = cmp.Or(p.cfg.MaxQueuedPerUser, DefaultMaxQueuedPerUser)
	p.queue.every = cmp.Or(p.cfg.RecountEvery, DefaultRecountEvery)
	p.queue.deltas = map[string]int64{}
	p.store.OnActiveChange(p.activeChanged)
	ctx, cancel := context.WithCancel(context.Background())
	p.queue.cancel, p.queue.done = cancel, make(chan struct{})
	go p.recountLoop(ctx)
}

func (p *Plane) stopQueue() {
	if p.queue.cancel != nil {
		p.queue.cancel()
		<-p.queue.done
		p.flushDeltas(context.Background())
	}
}

func (p *Plane) stripe(user string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h = (h ^ uint32(user[i])) * 16777619
	}
	return &p.queue.stripes[h%uint32(len(p.queue.stripes))]
}

// addQueued is kvstore.AddQueued under the user's stripe.
func (p *Plane) addQueued(ctx context.Context, user string, delta, limit int64) (int64, bool, error) {
	m := p.stripe(user)
	m.Lock()
	defer m.Unlock()
	return p.store.AddQueued(ctx, user, delta, limit)
}

// totalQueued is the number of unfinished jobs for admitting n more: the
// cached figure while it is fresh and n more stay under the last tenth of the
// limit, else the active index's size read now.
func (p *Plane) totalQueued(ctx context.Context, n int) (int64, error) {
	p.queue.totalMu.Lock()
	defer p.queue.totalMu.Unlock()
	margin := p.queue.max / 10
	if time.Since(p.queue.totalAt) < totalFresh && p.queue.total+int64(n) <= p.queue.max-margin {
		return p.queue.total, nil
	}
	total, err := p.store.ActiveCount(ctx)
	if err != nil {
		return 0, err
	}
	p.queue.total, p.queue.totalAt = total, time.Now()
	return total, nil
}

// admitTotal adds n admitted jobs to the cached total.
func (p *Plane) admitTotal(n int) {
	p.queue.totalMu.Lock()
	p.queue.total += int64(n)
	p.queue.totalMu.Unlock()
}

// admit reserves the jobs of one submission, n per user, or refuses it whole
// with a *events.QueueFullError (nothing reserved).
func (p *Plane) admit(ctx context.Context, users map[string]int) error {
	n := 0
	for _, k := range users {
		n += k
	}
	if p.queue.max >= 0 {
		total, err := p.totalQueued(ctx, n)
		if err != nil {
			return err
		}
		if total+int64(n) > p.queue.max {
			return p.refuse(&events.QueueFullError{Limit: events.LimitQueued, Queued: total, Adding: n, Max: p.queue.max})
		}
	}
	var done []string
	for _, u := range slices.Sorted(maps.Keys(users)) {
		before, ok, err := p.addQueued(ctx, u, int64(users[u]), p.queue.maxPerUser)
		if err == nil && !ok {
			err = p.refuse(&events.QueueFullError{Limit: events.LimitQueuedPerUser, UserID: u, Queued: before, Adding: users[u], Max: p.queue.maxPerUser})
		}
		if err != nil {
			for _, d := range done {
				p.release(ctx, d, users[d])
			}
			return err
		}
		done = append(done, u)
	}
	p.admitTotal(n)
	return nil
}

func (p *Plane) refuse(e *events.QueueFullError) error {
	e.RetryAfter = queueRetryAfter
	p.metrics.Refusal(e.Limit)
	return e
}

// release gives back n reserved jobs of user that were not created.
func (p *Plane) release(ctx context.Context, user string, n int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), countTimeout)
	defer cancel()
	if _, _, err := p.addQueued(ctx, user, -int64(n), -1); err != nil {
		p.log.WarnContext(ctx, "queue count not released; the recount repairs it", "user_id", user, "error", err.Error())
	}
	p.admitTotal(-n)
}

// activeChanged is the store's hook: a job finished (-1) or was reopened (+1).
// The change is written by the flush loop within flushEvery, with the other
// changes of the same user; a reopen is never refused.
func (p *Plane) activeChanged(j *events.Job, delta int) {
	p.queue.deltaMu.Lock()
	p.queue.deltas[j.UserID] += int64(delta)
	p.queue.deltaMu.Unlock()
}

// pending reports whether a change of user's count waits for the flush.
func (p *Plane) pending(user string) bool {
	p.queue.deltaMu.Lock()
	defer p.queue.deltaMu.Unlock()
	return p.queue.deltas[user] != 0
}

// flushDeltas writes the pending changes, one update per user.
func (p *Plane) flushDeltas(ctx context.Context) {
	p.queue.deltaMu.Lock()
	deltas := p.queue.deltas
	p.queue.deltas = map[string]int64{}
	p.queue.deltaMu.Unlock()
	for user, d := range deltas {
		if d == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, countTimeout)
		_, _, err := p.addQueued(ctx, user, d, -1)
		cancel()
		if err != nil {
			p.log.WarnContext(ctx, "queue count not updated; the recount repairs it", "user_id", user, "delta", d, "error", err.Error())
		}
	}
}

// Queue reports the unfinished jobs: in total, of q.UserID when set, and the
// users with the most as of this process's last recount.
func (p *Plane) Queue(ctx context.Context, q events.QueueQuery) (events.QueueReply, error) {
	total, err := p.store.ActiveCount(ctx)
	if err != nil {
		return events.QueueReply{}, err
	}
	r := events.QueueReply{Queued: total, Max: p.queue.max, MaxPerUser: p.queue.maxPerUser}
	if q.UserID != "" {
		if len(q.UserID) > events.MaxUserIDLen {
			return events.QueueReply{}, fmt.Errorf("%w: user_id is longer than %d bytes", events.ErrInvalid, events.MaxUserIDLen)
		}
		n, _, err := p.store.Queued(ctx, q.UserID)
		if err != nil {
			return events.QueueReply{}, err
		}
		r.User = &events.UserQueue{UserID: q.UserID, Queued: n}
	}
	p.queue.mu.Lock()
	r.Top = slices.Clone(p.queue.top)
	if !p.queue.topAt.IsZero() {
		r.TopAsOf = p.queue.topAt.Format(time.RFC3339Nano)
	}
	p.queue.mu.Unlock()
	if r.Top == nil {
		r.Top = []events.UserQueue{}
	}
	return r, nil
}

func (p *Plane) recountLoop(ctx context.Context) {
	defer close(p.queue.done)
	recount := time.NewTicker(p.queue.every)
	defer recount.Stop()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	for {
		if err := p.recount(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "queue recount failed", "error", err.Error())
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-flush.C:
				p.flushDeltas(ctx)
			case <-recount.C:
				break wait
			}
		}
	}
}

// recount counts the unfinished jobs of each user from the active index,
// repairs the counts that drifted (see the top of this file), and updates the
// top users and the queue metrics.
func (p *Plane) recount(ctx context.Context) error {
	start := map[string]uint64{}
	held := map[string]int64{}
	err := p.store.EachQueued(ctx, func(user string, n int64, rev uint64) error {
		start[user], held[user] = rev, n
		return nil
	})
	if err != nil {
		return err
	}
	counts := map[string]int64{}
	var total int64
	err = p.store.EachActive(ctx, func(r kvstore.ActiveRecord) error {
		user := r.UserID
		if user == "" { // a record without its user: read the job
			j, _, err := p.store.Get(ctx, r.ID)
			if errors.Is(err, kvstore.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if !j.Active() {
				return nil
			}
			user = j.UserID
		}
		counts[user]++
		total++
		return nil
	})
	if err != nil {
		return err
	}
	next := maps.Clone(start)
	for user := range counts { // known from now on, so the next pass can repair it
		if _, ok := next[user]; !ok {
			next[user] = 0
		}
	}
	p.queue.mu.Lock()
	prev := p.queue.prev
	p.queue.prev = next
	p.queue.mu.Unlock()
	for user := range joinKeys(held, counts) {
		if held[user] == counts[user] {
			continue
		}
		if rev, seen := prev[user]; !seen || rev != start[user] || p.pending(user) {
			continue // changed since the last pass, or about to: not quiet yet
		}
		err := p.store.SetQueued(ctx, user, counts[user], start[user])
		switch {
		case errors.Is(err, kvstore.ErrConflict):
			continue // changed during this pass
		case err != nil:
			return err
		}
		p.log.InfoContext(ctx, "queue count repaired", "user_id", user, "was", held[user], "now", counts[user])
	}
	top := topUsers(counts, metrics.TopUsers)
	p.queue.mu.Lock()
	p.queue.top, p.queue.topAt = top, time.Now().UTC()
	p.queue.mu.Unlock()
	p.metrics.QueueDepth(total, top, p.queueDepths(ctx))
	return nil
}

// queueDepths reads the tickets waiting or held in each stage queue; a queue
// whose consumer cannot be read is left out.
func (p *Plane) queueDepths(ctx context.Context) map[events.Queue]int64 {
	out := map[events.Queue]int64{}
	for _, q := range events.Queues() {
		c, err := p.js.Consumer(ctx, events.StreamJobs, q.Durable())
		if err != nil {
			continue
		}
		if info, err := c.Info(ctx); err == nil {
			out[q] = int64(info.NumPending) + int64(info.NumAckPending)
		}
	}
	return out
}

// topUsers is the n users with the most jobs in counts, most first (then by
// user id).
func topUsers(counts map[string]int64, n int) []events.UserQueue {
	all := make([]events.UserQueue, 0, len(counts))
	for u, k := range counts {
		all = append(all, events.UserQueue{UserID: u, Queued: k})
	}
	slices.SortFunc(all, func(a, b events.UserQueue) int {
		return cmp.Or(cmp.Compare(b.Queued, a.Queued), cmp.Compare(a.UserID, b.UserID))
	})
	return all[:min(n, len(all))]
}

func joinKeys(a, b map[string]int64) map[string]struct{} {
	out := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}
