package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

var worksheetNumber = regexp.MustCompile(`worksheet (\d+) \((quick|slow)\)`)

// TestSIGTERMDuringRunLeavesNoOrphan stops a lone sheetd with SIGTERM while eight
// designs are in flight: four answer within SHEETPIPE_SHUTDOWN_TIMEOUT, four would
// take 30s. sheetd exits 0 within the timeout. At rest, with no sheetd running,
// every job that is not final still has the ticket of its current hand-off in
// JOBS, and no job is held under a live lease: the quick designs were finished and
// handed to latex, the slow ones cancelled and handed back. A second sheetd then
// completes every job exactly once, reusing the finished designs (one design
// call each) and redoing only the cancelled ones.
func TestSIGTERMDuringRunLeavesNoOrphan(t *testing.T) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	var mu sync.Mutex
	designCalls := map[string]int{}
	d := &deployment{t: t, natsURL: srv.ClientURL(),
		env: append([]string{"SHEETPIPE_SHUTDOWN_TIMEOUT=2s"}, fastRecovery...),
		llm: fakellm.New(t, func(req fakellm.Request) fakellm.Reply {
			if req.Step == "latex" {
				return fakellm.Reply{Content: testLatex}
			}
			m := worksheetNumber.FindStringSubmatch(req.LastUser())
			if req.Step != "design" || m == nil {
				return fakellm.Reply{Status: 400, Content: "unexpected call"}
			}
			mu.Lock()
			designCalls[m[1]]++
			first := designCalls[m[1]] == 1
			mu.Unlock()
			delay := time.Duration(0)
			switch {
			case first && m[2] == "quick":
				delay = time.Second
			case first:
				delay = 30 * time.Second
			}
			return fakellm.Reply{Content: crashDesign, Delay: delay}
		})}
	first := d.startWorker("first sheetd")
	c := dial(t, ctx, srv.ClientURL())
	ids := newIDs(8)
	speed := func(i int) string { return []string{"quick", "slow"}[i%2] }
	c.submitMany(ids, func(i int) string { return fmt.Sprintf("worksheet %d (%s): fractions", i, speed(i)) })
	waitCalls(t, d.llm, "design", len(ids), 30*time.Second)

	first.signal(syscall.SIGTERM)
	signalled := time.Now()
	if code := first.wait(20 * time.Second); code != 0 {
		t.Fatalf("first sheetd exited %d after SIGTERM, want 0", code)
	}
	t.Logf("first sheetd exited %s after SIGTERM", time.Since(signalled).Round(10*time.Millisecond))
	if !hasLog(first.assertCleanStop(), "WARN", "shutdown deadline: cancelling in-flight work") {
		t.Errorf("the slow designs were not cancelled at the shutdown deadline")
	}

	tickets := c.tickets()
	for id, j := range c.jobs() {
		if events.FinishedStatus(j.Status) {
			continue
		}
		want := j.Ticket()
		if !tickets[want] {
			t.Errorf("job %s is %s at %s seq %d with no ticket for it in JOBS", id, j.Status, j.Stage, j.Seq)
		}
		if j.Status == events.StatusRunning && !j.Lease.Expired(time.Now()) {
			t.Errorf("job %s is running under a live lease %+v with no sheetd running", id, j.Lease)
		}
	}

	restarted := time.Now()
	second := d.startWorker("second sheetd")
	jobs := c.waitFinal(ids, time.Minute, second)
	t.Logf("second sheetd finished every job %s after it started", time.Since(restarted).Round(10*time.Millisecond))
	all := c.settledEvents(jobs)
	counts := checkRun(t, jobs, all)
	if counts[events.StatusCompleted] != len(ids) {
		t.Errorf("final statuses %v, want all %d completed", counts, len(ids))
	}
	for i, id := range ids {
		for _, ev := range checkHistory(t, id, all[id]) {
			if ev.Status == events.StatusRunning && ev.Time.After(restarted) {
				t.Logf("job %d (%s) running again %s after the second sheetd started", i, speed(i), ev.Time.Sub(restarted).Round(10*time.Millisecond))
				break
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range ids {
		want := map[string]int{"quick": 1, "slow": 2}[speed(i)]
		if n := designCalls[fmt.Sprint(i)]; n != want {
			t.Errorf("worksheet %d (%s): %d design calls, want %d", i, speed(i), n, want)
		}
	}
	if n := d.llm.CallsFor("latex"); n != len(ids) {
		t.Errorf("%d latex calls, want %d", n, len(ids))
	}
}

// tickets reads the stage tickets stored in JOBS (sent, not yet acknowledged).
func (c *client) tickets() map[events.Ticket]bool {
	c.t.Helper()
	s, err := c.js.Stream(c.ctx, events.StreamJobs)
	if err != nil {
		c.t.Fatal(err)
	}
	info, err := s.Info(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[events.Ticket]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(c.ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		} else if err != nil {
			c.t.Fatalf("get JOBS message %d: %v", seq, err)
		}
		if m.Subject == events.SubjectPrompt {
			continue
		}
		var tk events.Ticket
		if err := json.Unmarshal(m.Data, &tk); err != nil {
			c.t.Fatalf("JOBS message %d on %s is not a ticket: %v", seq, m.Subject, err)
		}
		out[tk] = true
	}
	return out
}
