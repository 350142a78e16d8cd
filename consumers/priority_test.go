package consumers_test

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// minimalLatex compiles fast, so 200 jobs go through pdflatex quickly.
const minimalLatex = `\documentclass{article}
\begin{document}
A worksheet.
\end{document}
`

// oneWorker runs every stage after prompt with one worker, so the order in which
// the jobs complete follows from the priorities alone.
func oneWorker(c *testpipeline.Setup) {
	c.Pipeline.Concurrency = map[events.Stage]int{events.StageDesign: 1, events.StageLatex: 1,
		events.StageCompile: 1, events.StageFix: 1}
}

// consumerInfo reads the JOBS consumer of queue q.
func (e *env) consumerInfo(q events.Queue) *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.nats.JS.Consumer(e.ctx, events.StreamJobs, q.Durable())
	if err != nil {
		e.t.Fatalf("consumer %s: %v", q.Durable(), err)
	}
	info, err := c.Info(e.ctx)
	if err != nil {
		e.t.Fatalf("consumer %s: %v", q.Durable(), err)
	}
	return info
}

// waitUntil polls ok until it holds, failing the test after a minute.
func (e *env) waitUntil(what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// completionOrder lists the jobs by the KV revision of their completion: the
// order in which they completed.
func (e *env) completionOrder(ids []string) []string {
	e.t.Helper()
	rev := map[string]uint64{}
	for _, id := range ids {
		evs := e.waitStatus(id, events.StatusCompleted)
		rev[id] = evs[len(evs)-1].Revision
	}
	order := slices.Clone(ids)
	slices.SortFunc(order, func(a, b string) int { return cmp.Compare(rev[a], rev[b]) })
	return order
}

// 200 normal jobs wait at design, a low one submitted before them and a high one
// after, each stage with one worker. The design LLM holds the first ticket the
// design worker takes until the high ticket waits for the worker too.
//
// The high job then takes the worker at every stage as soon as it frees: the
// only job that can be ahead of it is the one whose design it waited for, so it
// completes first or second (ignoring priority it would complete 202nd). The low
// job starts a stage only when no normal ticket of that stage is queued or
// running; it starts design after every normal job left design, and so every
// later stage after every normal job left that stage: it completes last.
func TestPriorityOvertakesQueuedJobs(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var open sync.Once
	openGate := func() { open.Do(func() { close(gate) }) }
	e := newIdleEnv(t, broker.Resources{}, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(fakellm.Request) fakellm.Reply { <-gate; return fakellm.Reply{Content: "outline"} },
		"latex":  fakellm.Script(fakellm.Reply{Content: minimalLatex}),
	}), oneWorker)
	t.Cleanup(openGate)

	lowID, highID := uuid.NewString(), uuid.NewString()
	ids := []string{lowID}
	e.submit(events.JobRequest{JobID: lowID, UserID: "u", Prompt: "low", Priority: events.PriorityLow})
	for range 200 {
		id := uuid.NewString()
		ids = append(ids, id)
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "normal"})
	}
	ids = append(ids, highID)
	e.submit(events.JobRequest{JobID: highID, UserID: "u", Prompt: "high", Priority: events.PriorityHigh})

	// The requests become jobs queued at design, one queue per priority.
	e.startPipeline(events.StagePrompt)
	e.waitUntil("202 design tickets queued", func() bool {
		var n uint64
		for _, q := range events.QueuesOf(events.StageDesign) {
			n += e.consumerInfo(q).NumPending
		}
		return n == 202
	})

	e.startPipeline(events.StageDesign, events.StageLatex, events.StageCompile, events.StageFix)
	highQueue := events.Queue{Stage: events.StageDesign, Priority: events.PriorityHigh}
	e.waitUntil("a design call and the high ticket delivered", func() bool {
		return e.llm.CallsFor("design") == 1 && e.consumerInfo(highQueue).NumAckPending == 1
	})
	openGate()

	order := e.completionOrder(ids)
	if rank := slices.Index(order, highID) + 1; rank > 2 {
		t.Errorf("the high job completed %dth of %d, want first or second", rank, len(order))
	}
	if rank := slices.Index(order, lowID) + 1; rank != len(order) {
		t.Errorf("the low job completed %dth of %d, want last", rank, len(order))
	}
}

// A high job's ticket stays on the high queue when it is retried: redelivered
// after a transient failure (nak with delay) and re-published by a user's retry.
func TestRetriedHighTicketKeepsItsQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(
			fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "overloaded"},
			fakellm.Reply{Status: http.StatusUnauthorized, Content: "bad key"},
			fakellm.Reply{Content: "outline"}),
		"latex": fakellm.Script(fakellm.Reply{Content: minimalLatex}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "high", Priority: events.PriorityHigh})
	// 503: retried by a nak with delay; 401: not transient, waits for a human.
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if n := count(evs, func(ev events.StatusEvent) bool { return ev.Status == events.StatusError }); n != 1 {
		t.Fatalf("%d error events before waiting_manual, want 1:%s", n, describe(evs))
	}
	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	e.waitStatus(id, events.StatusCompleted)
	if j := e.job(id); j.Priority != events.PriorityHigh {
		t.Fatalf("job priority %q, want high", j.Priority)
	}
	for _, q := range events.QueuesOf(events.StageDesign) {
		want := uint64(0)
		if q.Priority == events.PriorityHigh {
			want = 3 // the first delivery, its redelivery, the retry's ticket
		}
		if got := e.consumerInfo(q).Delivered.Consumer; got != want {
			t.Errorf("consumer %s delivered %d design tickets, want %d", q.Durable(), got, want)
		}
	}
	for _, st := range []events.Stage{events.StageLatex, events.StageCompile} {
		q := events.Queue{Stage: st, Priority: events.PriorityHigh}
		if got := e.consumerInfo(q).Delivered.Consumer; got != 1 {
			t.Errorf("consumer %s delivered %d tickets, want 1", q.Durable(), got)
		}
	}
}

// A high ticket that runs out of deliveries parks its job as a normal one does:
// the max-deliveries advisories of every queue's consumer are handled.
func TestMaxDeliveriesParksHighJob(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, lowMaxDeliver, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "overloaded"}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "high", Priority: events.PriorityHigh})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	const reason = "ticket for design hit max deliveries (2)"
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Message != reason {
		t.Fatalf("waiting_manual event %+v, want error %q", last, reason)
	}
	waitEmpty(t, e)
}

// A stage rebinds each of its queues on its own: with the design_high consumer
// deleted, normal jobs still run and Consuming names the missing consumer; once
// it is back a high job runs again.
func TestQueueConsumerRebinds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", minimalLatex, ""))
	high := events.Queue{Stage: events.StageDesign, Priority: events.PriorityHigh}
	if err := e.nats.JS.DeleteConsumer(e.ctx, events.StreamJobs, high.Durable()); err != nil {
		t.Fatal(err)
	}
	e.waitUntil("readiness to name the deleted consumer", func() bool {
		err := e.pipe.Consuming()
		return err != nil && strings.Contains(err.Error(), "its consumer design_high has been gone")
	})
	normal := uuid.NewString()
	e.submit(events.JobRequest{JobID: normal, UserID: "u", Prompt: "normal"})
	e.waitStatus(normal, events.StatusCompleted)

	if _, err := e.nats.JS.CreateOrUpdateConsumer(e.ctx, events.StreamJobs, broker.ConsumerConfig(high, broker.Resources{})); err != nil {
		t.Fatal(err)
	}
	e.waitUntil("the stage to consume every queue again", func() bool { return e.pipe.Consuming() == nil })
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "high", Priority: events.PriorityHigh})
	e.waitStatus(id, events.StatusCompleted)
}

// Low tickets that wait longer than AckWait × MaxDeliver for a worker, behind
// normal ones, are neither redelivered nor dead-lettered: a low queue holds one
// ticket at a time, and that one is heartbeated while it waits.
func TestStarvedLowTicketsAreNotRedelivered(t *testing.T) {
	t.Parallel()
	slow := func(req fakellm.Request) fakellm.Reply {
		if strings.Contains(req.LastUser(), "slow") {
			return fakellm.Reply{Content: "outline", Delay: 2 * time.Second}
		}
		return fakellm.Reply{Content: "outline"}
	}
	e := newEnvWith(t, broker.Resources{AckWait: time.Second, MaxDeliver: 2}, fakellm.ByStep(map[string]fakellm.Handler{
		"design": slow,
		"latex":  fakellm.Script(fakellm.Reply{Content: minimalLatex}),
	}), shortAckWait, func(c *testpipeline.Setup) { c.Pipeline.Concurrency = map[events.Stage]int{events.StageDesign: 2} })
	var ids []string
	for range 6 {
		id := uuid.NewString()
		ids = append(ids, id)
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "slow normal"})
	}
	for range 2 {
		id := uuid.NewString()
		ids = append(ids, id)
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "low", Priority: events.PriorityLow})
	}
	for _, id := range ids {
		e.waitStatus(id, events.StatusCompleted)
	}
	low := e.consumerInfo(events.Queue{Stage: events.StageDesign, Priority: events.PriorityLow})
	if low.Delivered.Consumer != 2 || low.NumRedelivered != 0 {
		t.Fatalf("design_low delivered %d tickets, %d redelivered; want 2 and 0", low.Delivered.Consumer, low.NumRedelivered)
	}
}
