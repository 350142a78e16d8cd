package consumers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

func (e *env) ticket(t events.Ticket, msgID string) {
	e.t.Helper()
	e.ticketOn(events.Queue{Stage: t.Stage, Priority: events.PriorityNormal}, t, msgID)
}

// ticketOn publishes t on queue q.
func (e *env) ticketOn(q events.Queue, t events.Ticket, msgID string) {
	e.t.Helper()
	data, err := json.Marshal(t)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.nats.JS.Publish(e.ctx, q.Subject(), data, jetstream.WithMsgID(msgID)); err != nil {
		e.t.Fatal(err)
	}
}

// seedJob writes a job as a crashed worker would have left it.
func (e *env) seedJob(j *events.Job) {
	e.t.Helper()
	j.UserID, j.Prompt, j.Mode, j.MaxRetries, j.ConversationID = "u", "fractions", events.ModeAuto, 3, j.ID
	if _, err := e.store.Create(e.ctx, j); err != nil {
		e.t.Fatal(err)
	}
}

func TestStaleTicketIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, goodLatex))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	for i, st := range []events.Stage{events.StageDesign, events.StageLatex, events.StageCompile, events.StageFix} {
		e.ticket(events.Ticket{JobID: id, Stage: st, Seq: uint64(i + 1)}, "late-"+string(st))
	}
	e.ticket(events.Ticket{JobID: uuid.NewString(), Stage: events.StageDesign, Seq: 1}, "unknown-job")
	e.waitIdle()
	if n := len(e.eventsOf(id)); n != len(evs) {
		t.Fatalf("stale tickets changed the job: %d events, want %d", n, len(evs))
	}
	if n := len(e.pipelineCalls()); n != 2 {
		t.Fatalf("%d LLM calls, want 2 (stale tickets must not call the LLM)", n)
	}
	waitEmpty(t, e)
}

func TestDuplicateTicketRunsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline", Delay: 300 * time.Millisecond}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}))
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusPending, CurrentStep: events.StepDesign, Stage: events.StageDesign, Seq: 1})
	second := e.startPipeline() // two processes compete for the copies
	_ = second
	for i := range 3 {
		e.ticket(events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}, "copy-"+string(rune('a'+i)))
	}
	e.waitStatus(id, events.StatusCompleted)
	e.waitIdle()
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls for three copies of one ticket, want 1", n)
	}
	completed := 0
	for _, ev := range e.eventsOf(id) {
		if ev.Status == events.StatusCompleted {
			completed++
		}
	}
	if completed != 1 {
		t.Fatalf("%d completed events", completed)
	}
}

// A worker wrote the design result and died before publishing the latex ticket:
// the redelivered design ticket re-publishes the latex ticket; design is not redone.
func TestRedeliveredTicketRepublishesNext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusPending, CurrentStep: events.StepLatex,
		Stage: events.StageLatex, Seq: 2, Design: "outline"})
	e.ticket(events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}, "redelivered")
	e.waitStatus(id, events.StatusCompleted)
	if d, l := e.llm.CallsFor("design"), e.llm.CallsFor("latex"); d != 0 || l != 1 {
		t.Fatalf("design calls %d (want 0), latex calls %d (want 1)", d, l)
	}
}

// A worker got the LLM's answer, recorded it in the conversation and died before
// writing the job: the takeover reuses the answer instead of paying for a new one.
func TestTakeoverReusesRecordedAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("a different outline", goodLatex, ""))
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusRunning, CurrentStep: events.StepDesign,
		Stage: events.StageDesign, Seq: 1, Lease: &events.Lease{Owner: "dead-worker", ExpiresAt: time.Now().Add(-time.Second)}})
	_, _, err := e.store.Converse(e.ctx, id, id, func(c *events.Conversation) error {
		c.Messages = append(c.Messages,
			events.Message{Role: "system", Content: "sys", Stage: events.StageDesign, Seq: 1},
			events.Message{Role: "user", Content: "fractions", Stage: events.StageDesign, Seq: 1},
			events.Message{Role: "assistant", Content: "recorded outline", Stage: events.StageDesign, Seq: 1})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.ticket(events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}, "redelivered")
	e.waitStatus(id, events.StatusCompleted)
	if n := e.llm.CallsFor("design"); n != 0 {
		t.Fatalf("%d design calls; the recorded answer should have been reused", n)
	}
	if j := e.job(id); j.Design != "recorded outline" {
		t.Fatalf("design %q", j.Design)
	}
}

// A ticket for a job another live worker holds waits for the lease to run out and
// then takes the job over.
func TestLiveLeaseIsRespectedThenTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	expires := time.Now().Add(1500 * time.Millisecond)
	e.seedJob(&events.Job{ID: id, Status: events.StatusRunning, CurrentStep: events.StepDesign,
		Stage: events.StageDesign, Seq: 1, Lease: &events.Lease{Owner: "slow-worker", ExpiresAt: expires}})
	e.ticket(events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}, "t1")
	e.waitStatus(id, events.StatusCompleted)
	calls := e.llm.Calls()
	if len(calls) == 0 || e.llm.CallsFor("design") != 1 {
		t.Fatalf("design calls %d, want 1", e.llm.CallsFor("design"))
	}
	first := e.eventsOf(id)[0]
	if first.Time.Before(expires) {
		t.Fatalf("job taken over at %s, before the live lease expired at %s", first.Time, expires)
	}
}

// Stop with a short deadline cancels a slow LLM call and hands the job back; a
// fresh pipeline finishes it, once.
func TestShutdownHandsWorkBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "slow outline", Delay: 5 * time.Second}, fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	e.waitFor(id, "running design", func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })
	waitCalls(t, e, "design", 1)
	stopCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	e.pipe.Stop(stopCtx)
	cancel()
	if j := e.job(id); j.Status != events.StatusRunning || !j.Lease.Expired(time.Now()) {
		t.Fatalf("after shutdown the job is %s with lease %+v; want running with a released lease", j.Status, j.Lease)
	}
	e.startPipeline()
	evs := e.waitStatus(id, events.StatusCompleted)
	if j := e.job(id); j.Design != "outline" {
		t.Fatalf("design %q: the cancelled call's answer must be discarded", j.Design)
	}
	completed := 0
	for _, ev := range evs {
		if ev.Status == events.StatusCompleted {
			completed++
		}
	}
	if completed != 1 || e.llm.CallsFor("design") != 2 {
		t.Fatalf("%d completed events, %d design calls", completed, e.llm.CallsFor("design"))
	}
}

// Stop with time to spare lets in-flight work finish before returning.
func TestShutdownFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline", Delay: 1500 * time.Millisecond}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	waitCalls(t, e, "design", 1)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.pipe.Stop(stopCtx)
	cancel()
	j := e.job(id)
	if j.Status != events.StatusPending || j.Stage != events.StageLatex || j.Design != "outline" {
		t.Fatalf("after a graceful stop the job is %s at %s; want design finished and handed to latex", j.Status, j.Stage)
	}
	e.startPipeline()
	e.waitStatus(id, events.StatusCompleted)
}

func waitCalls(t *testing.T, e *env, step string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.llm.CallsFor(step) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d %s calls within 30s", n, step)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitEmpty(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := e.nats.JS.Stream(e.ctx, events.StreamJobs)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left in JOBS", s.CachedInfo().State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
