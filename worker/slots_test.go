package worker

import (
	"testing"
	"time"
)

const (
	high = iota
	normal
	low
)

func ready(w *slotWaiter) bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// granted checks which waiters hold a slot, by name.
func granted(t *testing.T, ws map[string]*slotWaiter, want ...string) {
	t.Helper()
	for name, w := range ws {
		should := false
		for _, n := range want {
			should = should || n == name
		}
		if ready(w) != should {
			t.Fatalf("waiter %s granted %v, want %v", name, ready(w), should)
		}
	}
}

func TestSlotsGoToTheHighestWaiter(t *testing.T) {
	s := newSlots(1, 3)
	if w := s.enter(normal, time.Time{}); w != nil {
		t.Fatal("a free slot was not taken at once")
	}
	ws := map[string]*slotWaiter{}
	for _, x := range []struct {
		name  string
		level int
	}{{"low", low}, {"normal1", normal}, {"high1", high}, {"normal2", normal}, {"high2", high}} {
		if ws[x.name] = s.enter(x.level, time.Time{}); ws[x.name] == nil {
			t.Fatalf("%s got a slot while none was free", x.name)
		}
	}
	granted(t, ws)
	order := []string{"high1", "high2", "normal1", "normal2", "low"}
	for i := range order {
		s.release()
		granted(t, ws, order[:i+1]...)
	}
	s.release()
	if w := s.enter(low, time.Time{}); w != nil {
		t.Fatal("the last released slot was not free")
	}
}

func TestSlotsLeave(t *testing.T) {
	s := newSlots(1, 3)
	s.enter(high, time.Time{})
	ws := map[string]*slotWaiter{"normal": s.enter(normal, time.Time{}), "low1": s.enter(low, time.Time{}), "low2": s.enter(low, time.Time{})}
	s.leave(ws["low1"]) // withdrawn before it was granted: skipped
	s.release()
	granted(t, ws, "normal")
	s.leave(ws["normal"]) // withdrawn after it was granted: the slot passes on
	granted(t, ws, "normal", "low2")
}

// A queue whose last ticket said more wait on the server keeps a free slot from
// lower waiters until its next ticket arrives.
func TestSlotsKeptForAnExpectedTicket(t *testing.T) {
	s := newSlots(1, 3)
	s.enter(normal, time.Now().Add(time.Hour))
	ws := map[string]*slotWaiter{"low": s.enter(low, time.Time{})}
	s.release()
	granted(t, ws)
	if w := s.enter(normal, time.Time{}); w != nil {
		t.Fatal("the expected ticket did not get the kept slot at once")
	}
	s.release()
	granted(t, ws, "low")
}

// A higher expectation also holds back a lower ticket that finds a slot free.
func TestSlotsExpectationHoldsBackNewLowerTickets(t *testing.T) {
	s := newSlots(2, 3)
	s.enter(high, time.Now().Add(time.Hour))
	ws := map[string]*slotWaiter{"normal": s.enter(normal, time.Time{})}
	if ws["normal"] == nil {
		t.Fatal("a normal ticket took the slot kept for an expected high one")
	}
	if w := s.enter(high, time.Time{}); w != nil {
		t.Fatal("the expected high ticket did not get the free slot")
	}
	s.release()
	granted(t, ws, "normal")
}

// An expected ticket that never comes (another process took it) holds the slot
// only until its expectation lapses, for a ticket that waited when the slot freed
// and for one that came after.
func TestSlotsExpectationLapses(t *testing.T) {
	for _, lowFirst := range []bool{true, false} {
		s := newSlots(1, 3)
		s.enter(high, time.Now().Add(time.Second))
		var w *slotWaiter
		if lowFirst {
			w = s.enter(low, time.Time{})
		}
		s.release()
		if !lowFirst {
			w = s.enter(low, time.Time{})
		}
		if w == nil || ready(w) {
			t.Fatalf("low first %v: the low ticket took the slot kept for a high one", lowFirst)
		}
		select {
		case <-w.ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("low first %v: the slot stayed kept after the expectation lapsed", lowFirst)
		}
	}
}

// A waiter granted a slot sets its level's expectation in the same step: a slot
// that frees right after goes neither to a lower waiter.
func TestSlotsHandOffKeepsTheNextSlot(t *testing.T) {
	s := newSlots(2, 3)
	s.enter(normal, time.Time{})
	s.enter(normal, time.Time{})
	ws := map[string]*slotWaiter{"normal": s.enter(normal, time.Now().Add(time.Hour)), "low": s.enter(low, time.Time{})}
	s.release()
	granted(t, ws, "normal")
	s.release()
	granted(t, ws, "normal")
	if w := s.enter(normal, time.Time{}); w != nil {
		t.Fatal("the expected normal ticket did not get the kept slot")
	}
}
