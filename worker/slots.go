package worker

import (
	"sync"
	"time"
)

// slots is a runner's pool of worker slots shared by the queues of its stage. A
// slot that frees goes to a waiter of the highest priority (level 0 first).
// Within a level the waiters are grouped by key (the user of a ticket,
// Config.Key): with fair set the keys take turns, round-robin (a key with many
// waiters gets a slot after each other key with waiters), else the oldest
// waiter of the level goes first. A key with limit of its waiters in work in
// this process, or one the cluster's Limiter refused until a time (requeue),
// is passed over: its waiters do not hold a slot back from the others.
//
// A queue holds at most one ticket at a time, so between two tickets of a busy
// queue there is a moment when none of them waits here. So that a lower ticket
// does not slip into a slot in that moment, a ticket whose queue has more on the
// server says so when it enters: once it has its slot, and until the next one
// arrives, or the expectation lapses
// (another process took the ticket), a free slot is kept for that queue rather than
// given to a lower waiter.
type slots struct {
	mu      sync.Mutex
	free    int
	levels  []level
	expect  []time.Time // level's next ticket is on its way until then
	timer   *time.Timer // grants again once an expectation or a block lapses
	wakeAt  time.Time   // when timer fires; zero when it is not set
	fair    bool
	limit   int                  // waiters of one key in work at once; 0: no limit
	running map[string]int       // waiters of each key in work
	blocked map[string]time.Time // key takes no slot before then (Limiter refusal)
	seq     uint64               // arrival counter, for the order without fair
}

// level is one priority's waiters, by key.
type level struct {
	byKey map[string][]*slotWaiter
	ring  []string // keys with waiters, in order of their turns
}

// slotWaiter is one ticket waiting for a slot; ready closes when it gets one.
type slotWaiter struct {
	level   int
	key     string
	seq     uint64
	next    time.Time // when it gets its slot, its level expects a ticket until then
	ready   chan struct{}
	granted bool
}

func newSlots(n, levels int) *slots {
	s := &slots{free: n, levels: make([]level, levels), expect: make([]time.Time, levels),
		running: map[string]int{}, blocked: map[string]time.Time{}}
	for i := range s.levels {
		s.levels[i].byKey = map[string][]*slotWaiter{}
	}
	return s
}

// newFairSlots is newSlots whose keys take turns (fair) and may each have at
// most limit waiters in work at once (0: no limit).
func newFairSlots(n, levels int, fair bool, limit int) *slots {
	s := newSlots(n, levels)
	s.fair, s.limit = fair, limit
	return s
}

// enter takes a slot for a ticket of level with no key (enterKey).
func (s *slots) enter(lvl int, next time.Time) *slotWaiter { return s.enterKey(lvl, "", next) }

// enterKey takes a slot for a ticket of level and key: nil when it got one at
// once, else a waiter whose ready channel closes when it gets one. The ticket's
// arrival ends any expectation of its level; next (zero: none) is until when its
// level expects another ticket once this one has its slot, set in the same step
// so no slot frees in between unclaimed.
func (s *slots) enterKey(lvl int, key string, next time.Time) *slotWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expect[lvl] = time.Time{}
	now := time.Now()
	if s.free > 0 && s.first(now) >= lvl && s.eligible(key, now) {
		s.free--
		s.running[key]++
		s.expect[lvl] = next
		return nil
	}
	w := s.add(lvl, key, next, false)
	s.grant() // held back by an expectation: comes back when it lapses
	return w
}

// requeue puts back a ticket of level and key that had its slot but that the
// cluster's Limiter refused: the slot is freed, the key takes none before until,
// and the returned waiter, first of its key, gets a slot after that.
func (s *slots) requeue(lvl int, key string, until time.Time) *slotWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[key]--
	if s.running[key] <= 0 {
		delete(s.running, key)
	}
	s.free++
	s.blocked[key] = until
	w := s.add(lvl, key, time.Time{}, true)
	s.grant()
	return w
}

// add queues a new waiter (first of its key with front); the caller holds mu.
func (s *slots) add(lvl int, key string, next time.Time, front bool) *slotWaiter {
	s.seq++
	w := &slotWaiter{level: lvl, key: key, seq: s.seq, next: next, ready: make(chan struct{})}
	l := &s.levels[lvl]
	q := l.byKey[key]
	if len(q) == 0 {
		l.ring = append(l.ring, key)
	}
	if front {
		w.seq = 0 // oldest of the level too
		l.byKey[key] = append([]*slotWaiter{w}, q...)
	} else {
		l.byKey[key] = append(q, w)
	}
	return w
}

// leave withdraws a waiter that no longer wants its slot (the runner stops); a
// slot it was granted meanwhile goes to the next waiter.
func (s *slots) leave(w *slotWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		s.done(w.key)
		return
	}
	l := &s.levels[w.level]
	q := l.byKey[w.key]
	for i, x := range q {
		if x == w {
			s.setQueue(l, w.key, append(q[:i:i], q[i+1:]...))
			return
		}
	}
}

// setQueue stores key's waiters at l, dropping the key from the turns when
// none is left; the caller holds mu.
func (s *slots) setQueue(l *level, key string, q []*slotWaiter) {
	if len(q) > 0 {
		l.byKey[key] = q
		return
	}
	delete(l.byKey, key)
	for i, k := range l.ring {
		if k == key {
			l.ring = append(l.ring[:i:i], l.ring[i+1:]...)
			break
		}
	}
}

// release returns a slot of a ticket with no key (releaseKey).
func (s *slots) release() { s.releaseKey("") }

// releaseKey returns the slot of a ticket of key: it goes to the highest
// waiter, unless a higher level expects a ticket.
func (s *slots) releaseKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done(key)
}

// done frees a slot of key; the caller holds mu.
func (s *slots) done(key string) {
	s.running[key]--
	if s.running[key] <= 0 {
		delete(s.running, key)
	}
	s.free++
	s.grant()
}

// expectMore says a ticket of level is on its way until the given time.
func (s *slots) expectMore(lvl int, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.expect[lvl]) {
		s.expect[lvl] = until
	}
}

// eligible reports whether a waiter of key may take a slot at now; the caller
// holds mu.
func (s *slots) eligible(key string, now time.Time) bool {
	if s.limit > 0 && s.running[key] >= s.limit {
		return false
	}
	if until, ok := s.blocked[key]; ok {
		if until.After(now) {
			return false
		}
		delete(s.blocked, key)
	}
	return true
}

// waiting reports whether a waiter of level l may take a slot at now.
func (s *slots) waiting(l int, now time.Time) bool {
	for _, k := range s.levels[l].ring {
		if s.eligible(k, now) {
			return true
		}
	}
	return false
}

// first is the highest level that has a waiter that may take a slot or expects
// a ticket at now; len(levels) when none does.
func (s *slots) first(now time.Time) int {
	for l := range s.levels {
		if s.expect[l].After(now) || s.waiting(l, now) {
			return l
		}
	}
	return len(s.levels)
}

// pick takes the next waiter of level l that may take a slot at now: the first
// key in turn with fair, else the oldest; nil when none may.
func (s *slots) pick(l int, now time.Time) *slotWaiter {
	lv := &s.levels[l]
	at := -1
	for i, k := range lv.ring {
		if !s.eligible(k, now) {
			continue
		}
		if at < 0 || (!s.fair && lv.byKey[k][0].seq < lv.byKey[lv.ring[at]][0].seq) {
			at = i
		}
		if s.fair {
			break
		}
	}
	if at < 0 {
		return nil
	}
	key := lv.ring[at]
	q := lv.byKey[key]
	w := q[0]
	s.setQueue(lv, key, q[1:])
	if len(q) > 1 { // its next turn comes after every other key's
		lv.ring = append(append(lv.ring[:at:at], lv.ring[at+1:]...), key)
	}
	return w
}

// grant hands free slots to waiters in order of level. It stops at a level that
// expects a ticket but has no waiter that may take a slot, keeping the slot for
// it, and comes back when that expectation lapses, or when a key's block does.
// The caller holds mu.
func (s *slots) grant() {
	now := time.Now()
	for s.free > 0 {
		l := s.first(now)
		if l == len(s.levels) {
			break
		}
		w := s.pick(l, now)
		if w == nil {
			if s.waitingBelow(l) {
				s.retryAt(s.expect[l])
			}
			return
		}
		s.free--
		s.running[w.key]++
		s.expect[l] = w.next
		w.granted = true
		close(w.ready)
	}
	if s.free > 0 { // waiters of blocked keys try again when the block lapses
		for k, until := range s.blocked {
			if s.hasWaiter(k) {
				s.retryAt(until)
			}
		}
	}
}

// hasWaiter reports whether key has a waiter at any level.
func (s *slots) hasWaiter(key string) bool {
	for l := range s.levels {
		if len(s.levels[l].byKey[key]) > 0 {
			return true
		}
	}
	return false
}

// waitingBelow reports whether a ticket of a level lower than l waits.
func (s *slots) waitingBelow(l int) bool {
	for i := l + 1; i < len(s.levels); i++ {
		if len(s.levels[i].ring) > 0 {
			return true
		}
	}
	return false
}

// retryAt runs grant again at t (or sooner, when already set to). The caller
// holds mu.
func (s *slots) retryAt(t time.Time) {
	now := time.Now()
	if !s.wakeAt.IsZero() && s.wakeAt.After(now) && !s.wakeAt.After(t) {
		return
	}
	s.wakeAt = t
	d := max(t.Sub(now), 0)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.wakeAt = time.Time{}
			s.grant()
		})
		return
	}
	s.timer.Reset(d)
}
