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

	"github.com/sheetpipe/sheetpipe/broker"
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
	testpipeline.CheckTurns(t, done.snapshot(), done.mark, flood, light)
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

// inDesign follows, in the order the server delivers the events, which jobs of
// each user are running at design, and records the most of one user at once
// and whether two users ever ran there together.
type inDesign struct {
	mu       sync.Mutex
	user     map[string]string          // job → user
	running  map[string]map[string]bool // user → its jobs running at design
	most     map[string]int
	together bool
}

func watchInDesign(t *testing.T, nc *nats.Conn) *inDesign {
	t.Helper()
	d := &inDesign{user: map[string]string{}, running: map[string]map[string]bool{}, most: map[string]int{}}
	sub, err := nc.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		var ev events.StatusEvent
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		u := ev.UserID
		if d.running[u] == nil {
			d.running[u] = map[string]bool{}
		}
		if ev.Status == events.StatusRunning && ev.Step == events.StepDesign {
			d.running[u][ev.JobID] = true
		} else {
			delete(d.running[u], ev.JobID)
		}
		d.most[u] = max(d.most[u], len(d.running[u]))
		busy := 0
		for _, jobs := range d.running {
			if len(jobs) > 0 {
				busy++
			}
		}
		d.together = d.together || busy > 1
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

// With SHEETPIPE_USER_CONCURRENCY design=1 and two processes of 2 design
// workers each, users A and B submit 6 jobs each: no more than one of a user's
// jobs is ever running at design, while the other user's job runs beside it,
// and every job completes.
func TestUserConcurrencyAcrossProcesses(t *testing.T) {
	t.Parallel()
	capped := func(c *testpipeline.Setup) {
		c.Pipeline.Concurrency = map[events.Stage]int{events.StageDesign: 2}
		c.Pipeline.UserConcurrency = map[events.Stage]int{events.StageDesign: 1}
	}
	e := newIdleEnv(t, broker.Resources{}, fairLLM(), capped)
	d := watchInDesign(t, e.nats.NC)
	e.startPipeline()
	e.startPipeline()
	var ids []string
	for i := range 6 {
		for _, u := range []string{"A", "B"} {
			id := uuid.NewString()
			ids = append(ids, id)
			e.submit(events.JobRequest{JobID: id, UserID: u, Prompt: fmt.Sprintf("%s %d", u, i)})
		}
	}
	for _, id := range ids {
		e.waitStatus(id, events.StatusCompleted)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Logf("most jobs at design at once: %v; two users together: %v", d.most, d.together)
	for _, u := range []string{"A", "B"} {
		if d.most[u] != 1 {
			t.Errorf("user %s had up to %d jobs running at design at once, want 1", u, d.most[u])
		}
	}
	if !d.together {
		t.Error("the two users' jobs never ran at design together")
	}
	if calls := e.llm.CallsFor("design"); calls != len(ids) {
		t.Errorf("%d design calls for %d jobs", calls, len(ids))
	}
}
