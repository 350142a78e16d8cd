package worker

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// handOn releases the slot of holder's key and returns the waiter of ws that
// got it (nil: none).
func handOn(s *slots, holder string, ws []*slotWaiter, done map[*slotWaiter]bool) *slotWaiter {
	s.releaseKey(holder)
	for _, w := range ws {
		if ready(w) && !done[w] {
			done[w] = true
			return w
		}
	}
	return nil
}

// One slot, held; user a queues 6 tickets, then b 2 and c 1, and a high ticket
// of z comes last. The high ticket gets the slot first; then with fair the
// users take turns (a b c a b a a a a), without it the oldest goes first.
func TestSlotsTakeTurns(t *testing.T) {
	for _, fair := range []bool{true, false} {
		t.Run(fmt.Sprint("fair=", fair), func(t *testing.T) {
			s := newFairSlots(1, 3, fair, 0)
			if w := s.enterKey(normal, "first", time.Time{}); w != nil {
				t.Fatal("the first ticket waited")
			}
			var ws []*slotWaiter
			for _, k := range []string{"a", "a", "a", "a", "a", "a", "b", "b", "c"} {
				ws = append(ws, s.enterKey(normal, k, time.Time{}))
			}
			ws = append(ws, s.enterKey(high, "z", time.Time{}))
			done := map[*slotWaiter]bool{}
			holder := "first"
			var got []string
			for range ws {
				w := handOn(s, holder, ws, done)
				if w == nil {
					t.Fatalf("no waiter got the freed slot after %v", got)
				}
				got = append(got, w.key)
				holder = w.key
			}
			want := []string{"z", "a", "b", "c", "a", "b", "a", "a", "a", "a"}
			if !fair {
				want = []string{"z", "a", "a", "a", "a", "a", "a", "b", "b", "c"}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("turns %v, want %v", got, want)
			}
		})
	}
}

// Two slots, a key limit of 1: a's second ticket waits while b's runs beside
// a's first, and gets a slot when a's first ends. A key the cluster refused
// (requeue) is passed over until its block lapses, then served.
func TestSlotsKeyLimitAndRequeue(t *testing.T) {
	s := newFairSlots(2, 1, true, 1)
	if w := s.enterKey(0, "a", time.Time{}); w != nil {
		t.Fatal("a's first ticket waited")
	}
	a2 := s.enterKey(0, "a", time.Time{})
	if a2 == nil || ready(a2) {
		t.Fatal("a's second ticket got a slot beside a's first: over the key limit")
	}
	if w := s.enterKey(0, "b", time.Time{}); w != nil {
		t.Fatal("b's ticket waited for a slot that a may not use")
	}
	s.releaseKey("a")
	if !ready(a2) {
		t.Fatal("a's second ticket did not get the slot a's first freed")
	}
	// a's second is refused by the cluster: blocked for 200ms.
	until := time.Now().Add(200 * time.Millisecond)
	a3 := s.requeue(0, "a", until)
	if ready(a3) {
		t.Fatal("a refused ticket got a slot at once")
	}
	c := s.enterKey(0, "c", time.Time{})
	if c != nil {
		t.Fatal("c waited while a slot is free and a is blocked")
	}
	s.releaseKey("c")
	select {
	case <-a3.ready:
		if time.Now().Before(until) {
			t.Fatal("a refused ticket got a slot before its block lapsed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a refused ticket never got a slot once its block lapsed")
	}
}
