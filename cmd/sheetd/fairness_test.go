package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// fairLLM answers design after 300ms and LaTeX at once.
func fairLLM(t *testing.T) *fakellm.Server {
	return fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: crashDesign, Delay: 300 * time.Millisecond}),
		"latex":  fakellm.Script(fakellm.Reply{Content: testLatex}),
	}))
}

// submitAs publishes a request of user for each of ids.
func (c *client) submitAs(user string, ids []string) {
	c.t.Helper()
	for i, id := range ids {
		data, err := json.Marshal(events.JobRequest{JobID: id, UserID: user, Prompt: fmt.Sprintf("worksheet %d of %s", i, user)})
		if err != nil {
			c.t.Fatal(err)
		}
		c.publishRetrying(events.SubjectPrompt, data, id)
	}
}

// eventsInOrder reads every status event of JOB_EVENTS in stream order: the
// order in which the server stored them.
func (c *client) eventsInOrder() []events.StatusEvent {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	cons, err := c.js.OrderedConsumer(ctx, events.StreamEvents,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectStatus}})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []events.StatusEvent
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			c.t.Fatal(err)
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			var ev events.StatusEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				c.t.Fatalf("status event is not JSON: %v", err)
			}
			out = append(out, ev)
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if n == 0 || pending == 0 {
			return out
		}
	}
}

// leftDesign lists the jobs in the order they left design (their first event
// at step latex).
func leftDesign(evs []events.StatusEvent) []string {
	var out []string
	for _, ev := range evs {
		if ev.Step == events.StepLatex && !slices.Contains(out, ev.JobID) {
			out = append(out, ev.JobID)
		}
	}
	return out
}

// Two sheetd, one design worker each, a 300ms design call: user A submits 60
// jobs, and once two of them left design user B submits 3. Each of B's jobs
// leaves design before the 10th of A's jobs that leave it after B's
// submission (in arrival order B waits for all of A's), and all 63 complete
// once.
func TestUsersTakeTurnsAcrossSheetd(t *testing.T) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	d := &deployment{t: t, natsURL: srv.ClientURL(), llm: fairLLM(t), env: []string{"SHEETPIPE_CONCURRENCY=design=1"}}
	workers := []*worker{d.startWorker("sheetd-1"), d.startWorker("sheetd-2")}
	c := dial(t, ctx, srv.ClientURL())

	flood, light := newIDs(60), newIDs(3)
	c.submitAs("A", flood)
	deadline := time.Now().Add(time.Minute)
	for len(leftDesign(c.eventsInOrder())) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("A's designs did not start within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every event stored after this one came after B's submission.
	stream, err := c.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.submitAs("B", light)
	jobs := c.waitFinal(append(slices.Clone(flood), light...), 3*time.Minute, workers...)
	all := c.eventsInOrder()
	mark := len(leftDesign(all[:info.State.Msgs]))
	order := leftDesign(all)
	testpipeline.CheckTurns(t, order, mark, flood, light)
	counts := checkRun(t, jobs, c.settledEvents(jobs))
	if counts[events.StatusCompleted] != len(jobs) {
		t.Errorf("final statuses %v, want all %d completed", counts, len(jobs))
	}
}

// designPeaks replays evs and returns the most jobs of each user running at
// design at once and whether two users ever ran there together.
func designPeaks(evs []events.StatusEvent) (most map[string]int, together bool) {
	running := map[string]map[string]bool{}
	most = map[string]int{}
	for _, ev := range evs {
		u := ev.UserID
		if running[u] == nil {
			running[u] = map[string]bool{}
		}
		if ev.Status == events.StatusRunning && ev.Step == events.StepDesign {
			running[u][ev.JobID] = true
		} else {
			delete(running[u], ev.JobID)
		}
		most[u] = max(most[u], len(running[u]))
		busy := 0
		for _, jobs := range running {
			if len(jobs) > 0 {
				busy++
			}
		}
		together = together || busy > 1
	}
	return most, together
}

// SHEETPIPE_USER_CONCURRENCY=design=1 on two sheetd of 2 design workers each:
// users A and B submit 8 jobs each. In the order JOB_EVENTS stored the events,
// no more than one job of a user is ever running at design, while the other
// user's job runs beside it; every job completes once.
func TestUserConcurrencyAcrossSheetd(t *testing.T) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	d := &deployment{t: t, natsURL: srv.ClientURL(), llm: fairLLM(t),
		env: []string{"SHEETPIPE_CONCURRENCY=design=2", "SHEETPIPE_USER_CONCURRENCY=design=1"}}
	workers := []*worker{d.startWorker("sheetd-1"), d.startWorker("sheetd-2")}
	c := dial(t, ctx, srv.ClientURL())
	a, b := newIDs(8), newIDs(8)
	c.submitAs("A", a)
	c.submitAs("B", b)
	jobs := c.waitFinal(append(slices.Clone(a), b...), 3*time.Minute, workers...)
	all := c.settledEvents(jobs)
	most, together := designPeaks(c.eventsInOrder())
	t.Logf("most jobs at design at once %v; two users together %v; design calls %d", most, together, d.llm.CallsFor("design"))
	for _, u := range []string{"A", "B"} {
		if most[u] != 1 {
			t.Errorf("user %s had up to %d jobs running at design at once, want 1", u, most[u])
		}
	}
	if !together {
		t.Error("the two users' jobs never ran at design together")
	}
	counts := checkRun(t, jobs, all)
	if counts[events.StatusCompleted] != len(jobs) {
		t.Errorf("final statuses %v, want all %d completed", counts, len(jobs))
	}
}

// Two sheetd with one design worker each, a per-user cap of 1 at design and
// fast recovery: A submits 30 jobs and B 5, so most tickets wait their turn
// held by the two processes. One sheetd is killed with SIGKILL while it holds
// waiting tickets and a place of the cap. The survivor gets the held tickets
// back after AckWait and the dead holder's place once its lease lapsed: every
// job completes exactly once, and only a design in work at the kill is paid for
// twice.
func TestKillWhileTicketsWaitTheirTurn(t *testing.T) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	d := &deployment{t: t, natsURL: srv.ClientURL(), llm: fairLLM(t),
		env: append([]string{"SHEETPIPE_CONCURRENCY=design=1", "SHEETPIPE_USER_CONCURRENCY=design=1"}, fastRecovery...)}
	victim, survivor := d.startWorker("victim"), d.startWorker("survivor")
	c := dial(t, ctx, srv.ClientURL())
	a, b := newIDs(30), newIDs(5)
	c.submitAs("A", a)
	c.submitAs("B", b)

	design := events.Queue{Stage: events.StageDesign, Priority: events.PriorityNormal}
	cons, err := c.js.Consumer(ctx, events.StreamJobs, design.Durable())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Two in work at most (one per process): the rest held, waiting.
		if len(leftDesign(c.eventsInOrder())) >= 3 && info.NumAckPending > 6 {
			t.Logf("killing the victim with %d design tickets held by the two sheetd", info.NumAckPending)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tickets held waiting within a minute (ack pending %d)", info.NumAckPending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill victim: %v", err)
	}
	victim.wait(10 * time.Second)

	ids := append(slices.Clone(a), b...)
	jobs := c.waitFinal(ids, 3*time.Minute, survivor)
	counts := checkRun(t, jobs, c.settledEvents(jobs))
	if counts[events.StatusCompleted] != len(ids) {
		t.Errorf("final statuses %v, want all %d completed", counts, len(ids))
	}
	if calls := d.llm.CallsFor("design"); calls > len(ids)+1 {
		t.Errorf("%d design calls for %d jobs: more than the one in work at the kill was repeated", calls, len(ids))
	}
	if most, _ := designPeaks(c.eventsInOrder()); most["A"] > 2 || most["B"] > 2 {
		// A dead holder's job may still count as running at design until its
		// ticket is taken over: at most one more than the cap.
		t.Errorf("most jobs at design at once %v", most)
	}
}
