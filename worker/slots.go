package worker

import (
	"sync"
	"time"
)

// slots is a runner's pool of worker slots shared by the queues of its stage. A
// slot that frees goes to the waiter of the highest priority (level 0 first),
// first come first served within a level.
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
	waiters [][]*slotWaiter
	expect  []time.Time // level's next ticket is on its way until then
	timer   *time.Timer // gives a kept slot away once an expectation lapses
}

// slotWaiter is one ticket waiting for a slot; ready closes when it gets one.
type slotWaiter struct {
	level   int
	next    time.Time // when it gets its slot, its level expects a ticket until then
	ready   chan struct{}
	granted bool
}

func newSlots(n, levels int) *slots {
	return &slots{free: n, waiters: make([][]*slotWaiter, levels), expect: make([]time.Time, levels)}
}

// enter takes a slot for a ticket of level: nil when it got one at once, else a
// waiter whose ready channel closes when it gets one. The ticket's arrival ends
// any expectation of its level; next (zero: none) is until when its level
// expects another ticket once this one has its slot, set in the same step so no
// slot frees in between unclaimed.
func (s *slots) enter(level int, next time.Time) *slotWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expect[level] = time.Time{}
	if s.free > 0 && s.first(time.Now()) >= level {
		s.free--
		s.expect[level] = next
		return nil
	}
	w := &slotWaiter{level: level, next: next, ready: make(chan struct{})}
	s.waiters[level] = append(s.waiters[level], w)
	s.grant() // held back by an expectation: comes back when it lapses
	return w
}

// leave withdraws a waiter that no longer wants its slot (the runner stops); a
// slot it was granted meanwhile goes to the next waiter.
func (s *slots) leave(w *slotWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		s.free++
		s.grant()
		return
	}
	q := s.waiters[w.level]
	for i, x := range q {
		if x == w {
			s.waiters[w.level] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// release returns a slot: it goes to the highest waiter, unless a higher level
// expects a ticket.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free++
	s.grant()
}

// expectMore says a ticket of level is on its way until the given time.
func (s *slots) expectMore(level int, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.expect[level]) {
		s.expect[level] = until
	}
}

// first is the highest level that waits or expects a ticket at now; len(levels)
// when none does.
func (s *slots) first(now time.Time) int {
	for l := range s.waiters {
		if len(s.waiters[l]) > 0 || s.expect[l].After(now) {
			return l
		}
	}
	return len(s.waiters)
}

// grant hands free slots to waiters in order of level. It stops at a level that
// expects a ticket but has no waiter, keeping the slot for it, and comes back when
// that expectation lapses. The caller holds mu.
func (s *slots) grant() {
	now := time.Now()
	for s.free > 0 {
		l := s.first(now)
		if l == len(s.waiters) {
			return
		}
		if len(s.waiters[l]) == 0 {
			if s.waitingBelow(l) {
				s.retryAt(s.expect[l].Sub(now))
			}
			return
		}
		w := s.waiters[l][0]
		s.waiters[l] = s.waiters[l][1:]
		s.free--
		s.expect[l] = w.next
		w.granted = true
		close(w.ready)
	}
}

// waitingBelow reports whether a ticket of a level lower than l waits.
func (s *slots) waitingBelow(l int) bool {
	for _, q := range s.waiters[l+1:] {
		if len(q) > 0 {
			return true
		}
	}
	return false
}

// retryAt runs grant again after d, when the expectation that kept a slot lapses.
func (s *slots) retryAt(d time.Duration) {
	if s.timer == nil {
		s.timer = time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.grant()
		})
		return
	}
	s.timer.Reset(d)
}
