package consumers_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// designsDone records, in the order the server delivers them, the jobs whose
// design was written (their first event at step latex): the order in which the
// jobs left design.
type designsDone struct {
	mu    sync.Mutex
	order []string
	seen  map[string]bool
	mark  int // len(order) when the light user submitted
}

func watchDesignsDone(t *testing.T, nc *nats.Conn) *designsDone {
	t.Helper()
	d := &designsDone{seen: map[string]bool{}}
	sub, err := nc.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		var ev events.StatusEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.Step != events.StepLatex {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.seen[ev.JobID] {
			d.seen[ev.JobID] = true
			d.order = append(d.order, ev.JobID)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return d
}

// has reports whether every job of ids left design.
func (d *designsDone) has(ids []string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if !d.seen[id] {
			return false
		}
	}
	return true
}

func (d *designsDone) snapshot() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.order)
}

// checkTurns fails the test unless each of light's jobs left design before the
// 10th of flood's jobs that left design after mark (how many had left before
// the light user submitted).
func checkTurns(t *testing.T, order []string, mark int, flood, light []string) {
	t.Helper()
	for _, id := range light {
		at := slices.Index(order, id)
		if at < 0 {
			t.Fatalf("light job %s never left design", id)
		}
		ahead := 0
		for _, other := range order[mark:at] {
			if slices.Contains(flood, other) {
				ahead++
			}
		}
		t.Logf("light job left design after %d flood jobs that left after its submission", ahead)
		if ahead >= 9 {
			t.Errorf("light job %s left design after %d of the flood's jobs that left after its submission, want fewer than 9 (the 10th after it)", id, ahead)
		}
	}
}

// fairLLM answers design after 300ms, LaTeX at once.
func fairLLM() fakellm.Handler {
	return fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline", Delay: 300 * time.Millisecond}),
		"latex":  fakellm.Script(fakellm.Reply{Content: minimalLatex}),
	})
}

// User A submits 60 jobs, and once A's designs are under way user B submits 3;
// design has 2 workers and each design call takes 300ms. The users take turns at
// design, so each of B's jobs leaves design before the 10th of A's jobs that
// leave it after B's submission (in arrival order, B would wait for all of
// A's).
func TestUsersTakeTurns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fairLLM(), func(c *testpipeline.Setup) {
		c.Pipeline.Concurrency = map[events.Stage]int{events.StageDesign: 2}
	})
	done := watchDesignsDone(t, e.nats.NC)
	flood, light := submitFloodThenLight(t, e, done)
	e.waitUntil("B's designs done", func() bool { return done.has(light) })
	checkTurns(t, done.snapshot(), done.mark, flood, light)
}

// submitFloodThenLight submits user A's 60 jobs, waits until two of them left
// design (A's tickets are queued there), marks the order, and submits user
// B's 3 jobs.
func submitFloodThenLight(t *testing.T, e *env, done *designsDone) (flood, light []string) {
	t.Helper()
	for i := range 60 {
		id := uuid.NewString()
		flood = append(flood, id)
		e.submit(events.JobRequest{JobID: id, UserID: "A", Prompt: fmt.Sprintf("flood %d", i)})
	}
	e.waitUntil("two of A's designs done", func() bool { return len(done.snapshot()) >= 2 })
	done.mu.Lock()
	done.mark = len(done.order)
	done.mu.Unlock()
	for i := range 3 {
		id := uuid.NewString()
		light = append(light, id)
		e.submit(events.JobRequest{JobID: id, UserID: "B", Prompt: fmt.Sprintf("light %d", i)})
	}
	return flood, light
}
