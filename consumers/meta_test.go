package consumers_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// waitJob waits until job id satisfies ok and returns it.
func (e *env) waitJob(id, what string, ok func(*events.Job) bool) *events.Job {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		j := e.job(id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s: no %s within 90s: %s/%s, description %q, meta_error %q",
				id, what, j.Status, j.CurrentStep, j.Description, j.MetaError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitDescribed(id string) *events.Job {
	e.t.Helper()
	return e.waitJob(id, "description", func(j *events.Job) bool { return j.Description != "" })
}

// metaCounter reads stage_messages_total{step="meta",outcome}.
func (e *env) metaCounter(outcome string) float64 {
	return testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("meta", outcome))
}

// waitMetaIdle waits until the meta consumer holds no ticket: none waiting, none
// delivered and unacknowledged.
func (e *env) waitMetaIdle() {
	e.t.Helper()
	waitUntil(e.t, "the meta consumer to hold no ticket", func() bool {
		c, err := e.nats.JS.Consumer(e.ctx, events.StreamJobs, string(events.StageMeta))
		if err != nil {
			return false
		}
		info, err := c.Info(e.ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// gate blocks the LLM replies it wraps until it is opened, so a test decides
// when a step may finish.
type gate chan struct{}

// openAtEnd opens the gates when the test ends, before the LLM server closes
// (which waits for the replies the gates hold).
func (e *env) openAtEnd(gates ...gate) {
	for _, g := range gates {
		e.t.Cleanup(g.open)
	}
}

func (g gate) open() {
	select {
	case <-g:
	default:
		close(g)
	}
}

func (g gate) wrap(h fakellm.Handler) fakellm.Handler {
	return func(req fakellm.Request) fakellm.Reply {
		select {
		case <-g:
		case <-time.After(2 * time.Minute):
		}
		return h(req)
	}
}

func TestJobGetsDescriptionAndTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	j := e.waitDescribed(id)
	if j.Description != testDescription || !slices.Equal(j.Tags, []string{"math", "fractions", "grade 5"}) {
		t.Fatalf("description %q, tags %q", j.Description, j.Tags)
	}
	if j.Status != events.StatusCompleted || j.MetaSeq != j.LatexSeq || j.LatexSeq == 0 || j.MetaError != "" {
		t.Fatalf("job after meta: %s, meta_seq %d, latex_seq %d, meta_error %q", j.Status, j.MetaSeq, j.LatexSeq, j.MetaError)
	}
	for _, c := range e.llm.Calls() {
		if c.Step == "meta" && !strings.Contains(c.LastUser(), `\section*{Fractions}`) {
			t.Fatalf("meta request lacks the job's LaTeX:\n%s", c.LastUser())
		}
	}
	e.waitMetaIdle()
	e.noEventsAfter(id, len(evs))
	if n := e.llm.CallsFor("meta"); n != 2 {
		t.Fatalf("%d meta calls, want 2 (description and tags, once)", n)
	}
	if ok := e.metaCounter("ok"); ok != 1 {
		t.Fatalf("stage_messages_total{meta,ok} = %v, want 1", ok)
	}
	if n := testutil.ToFloat64(e.metrics.LLMTokens.WithLabelValues("meta", "gpt-4o-mini", "completion")); n != 7 {
		t.Fatalf("llm_tokens_total{meta,completion} = %v, want 7", n)
	}
}

// The meta calls hang until the job has completed: the PDF never waits for its
// description, which arrives afterwards.
func TestDescriptionNeverDelaysThePDF(t *testing.T) {
	t.Parallel()
	g := make(gate)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"meta":   g.wrap(metaReplies(testDescription, testTags)),
	}))
	e.openAtEnd(g)
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	waitUntil(t, "both meta calls to reach the LLM", func() bool { return e.llm.CallsFor("meta") == 2 })
	evs := e.waitStatus(id, events.StatusCompleted)
	if j := e.job(id); j.Description != "" || len(j.Tags) != 0 {
		t.Fatalf("description %q before the meta calls were answered", j.Description)
	}
	g.open()
	j := e.waitDescribed(id)
	if j.Description != testDescription || len(j.Tags) != 3 || j.Status != events.StatusCompleted || j.PDFURL == "" {
		t.Fatalf("job after the meta calls: %s, pdf_url %q, description %q, tags %q", j.Status, j.PDFURL, j.Description, j.Tags)
	}
	e.noEventsAfter(id, len(evs))
}

// Meta calls that always fail leave the job as the pipeline made it: completed,
// without description. The ticket is retried a bounded number of times, then
// acked and counted as failed.
func TestFailingDescriptionNeverFailsTheJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		reply       fakellm.Reply
		wantRetries float64
	}{
		{"server error", fakellm.Reply{Status: http.StatusInternalServerError, Content: "boom"}, 2},
		{"empty answer", fakellm.Reply{Content: "  "}, 2},
		{"refused", fakellm.Reply{Status: http.StatusUnauthorized, Content: "bad key"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
				"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
				"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
				"meta":   fakellm.Script(tc.reply),
			}), func(c *testpipeline.Setup) { c.Pipeline.MetaAttempts = 3 })
			id := uuid.NewString()
			e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
			evs := e.waitStatus(id, events.StatusCompleted)
			waitCounter(t, func() float64 { return e.metaCounter("failed") }, 1)
			e.waitMetaIdle()
			calls := e.llm.CallsFor("meta")
			e.noEventsAfter(id, len(evs))
			if n := e.llm.CallsFor("meta"); n != calls {
				t.Fatalf("%d more meta calls after the stage gave up", n-calls)
			}
			if r := e.metaCounter("retry"); r != tc.wantRetries || e.metaCounter("failed") != 1 || e.metaCounter("ok") != 0 {
				t.Fatalf("meta outcomes: retry %v (want %v), failed %v, ok %v", r, tc.wantRetries, e.metaCounter("failed"), e.metaCounter("ok"))
			}
			j := e.job(id)
			if j.Status != events.StatusCompleted || j.Description != "" || len(j.Tags) != 0 || j.MetaError == "" || j.MetaSeq != j.LatexSeq {
				t.Fatalf("job: %s, description %q, tags %q, meta_error %q, meta_seq %d/%d",
					j.Status, j.Description, j.Tags, j.MetaError, j.MetaSeq, j.LatexSeq)
			}
			if last := evs[len(evs)-1]; last.Error != nil {
				t.Fatalf("completed event carries an error: %+v", last.Error)
			}
		})
	}
}

// A meta write lands while another stage's worker holds the job's lease: that
// worker keeps its lease, is not cancelled and finishes its step once.
func TestDescriptionWrittenUnderAnotherStagesLease(t *testing.T) {
	t.Parallel()
	metaGate, fixGate := make(gate), make(gate)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: brokenLatex}),
		"fix": fixGate.wrap(func(fakellm.Request) fakellm.Reply {
			return fakellm.Reply{Content: goodLatex}
		}),
		"meta": metaGate.wrap(metaReplies(testDescription, testTags)),
	}))
	e.openAtEnd(metaGate, fixGate)
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	waitUntil(t, "the fix call to reach the LLM", func() bool { return e.llm.CallsFor("fix") == 1 })
	running := e.job(id)
	if running.Status != events.StatusRunning || running.Stage != events.StageFix || running.Lease == nil || running.Description != "" {
		t.Fatalf("job %s at %s, lease %+v, description %q; want running at fix, not yet described",
			running.Status, running.Stage, running.Lease, running.Description)
	}
	metaGate.open()
	j := e.waitDescribed(id)
	if j.Status != events.StatusRunning || j.Stage != events.StageFix || j.Lease == nil || j.Lease.Owner != running.Lease.Owner {
		t.Fatalf("after the meta write the job is %s at %s with lease %+v, want still running at fix under lease %+v",
			j.Status, j.Stage, j.Lease, running.Lease)
	}
	fixGate.open()
	evs := e.waitStatus(id, events.StatusCompleted)
	checkSequence(t, evs[4:], []step{
		{events.StatusPending, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusWaitingAIFix, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusPending, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusCompleted, events.StepDone},
	})
	fix := func(outcome string) float64 {
		return testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("fix", outcome))
	}
	if fix("ok") != 1 || fix("abandoned") != 0 || fix("aborted") != 0 || fix("retry") != 0 || fix("error") != 0 {
		t.Fatalf("fix outcomes: ok %v, abandoned %v, aborted %v, retry %v, error %v",
			fix("ok"), fix("abandoned"), fix("aborted"), fix("retry"), fix("error"))
	}
	got := e.job(id)
	if got.Latex != strings.TrimSpace(goodLatex) || got.RetryCount != 1 || got.Description != testDescription {
		t.Fatalf("job after the fix: retry_count %d, description %q", got.RetryCount, got.Description)
	}
	if n := e.llm.CallsFor("fix"); n != 1 {
		t.Fatalf("%d fix calls, want 1", n)
	}
}

// A refinement replaces the LaTeX: the new LaTeX is described again, and a late
// meta ticket for the old LaTeX changes nothing.
func TestRefineDescribesTheNewLatex(t *testing.T) {
	t.Parallel()
	second := strings.Replace(goodLatex, "Fractions", "Decimals", 1)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "design 1"}, fakellm.Reply{Content: "design 2"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}, fakellm.Reply{Content: second}),
		"refine": fakellm.Script(fakellm.Reply{Content: "decimals, grade 5"}),
		"meta": func(req fakellm.Request) fakellm.Reply {
			topic := "fractions"
			if strings.Contains(req.LastUser(), "Decimals") {
				topic = "decimals"
			}
			return metaReplies("A "+topic+" worksheet.", "math, "+topic)(req)
		},
	}))
	id := e.submitNew("")
	e.waitStatus(id, events.StatusCompleted)
	first := e.waitDescribed(id)
	if first.Description != "A fractions worksheet." {
		t.Fatalf("first description %q", first.Description)
	}
	if _, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "decimals instead"}); err != nil {
		t.Fatal(err)
	}
	j := e.waitJob(id, "the new description", func(j *events.Job) bool { return j.Description == "A decimals worksheet." })
	if !slices.Equal(j.Tags, []string{"math", "decimals"}) || j.LatexSeq <= first.LatexSeq || j.MetaSeq != j.LatexSeq {
		t.Fatalf("after refine: tags %q, latex_seq %d (was %d), meta_seq %d", j.Tags, j.LatexSeq, first.LatexSeq, j.MetaSeq)
	}
	e.waitMetaIdle()
	calls, stale := e.llm.CallsFor("meta"), e.metaCounter("stale")
	e.ticket(events.Ticket{JobID: id, Stage: events.StageMeta, Seq: first.LatexSeq}, "late-meta")
	e.ticket(events.Ticket{JobID: id, Stage: events.StageMeta, Seq: j.LatexSeq}, "repeated-meta")
	e.ticket(events.Ticket{JobID: uuid.NewString(), Stage: events.StageMeta, Seq: 1}, "unknown-job-meta")
	waitCounter(t, func() float64 { return e.metaCounter("stale") }, stale+3)
	if n := e.llm.CallsFor("meta"); n != calls {
		t.Fatalf("stale meta tickets made %d LLM calls", n-calls)
	}
	if got := e.job(id); got.Description != "A decimals worksheet." {
		t.Fatalf("a stale meta ticket changed the description to %q", got.Description)
	}
}

// A meta ticket that runs out of deliveries is dropped; its job is not parked.
func TestDeadMetaTicketLeavesJobAlone(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, lowMaxDeliver, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"meta":   fakellm.Script(fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "overloaded"}),
	}), func(c *testpipeline.Setup) { c.Pipeline.MetaAttempts = 10 })
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	waitCounter(t, func() float64 { return testutil.ToFloat64(e.metrics.DeadLetters.WithLabelValues("meta")) }, 1)
	waitEmpty(t, e)
	e.noEventsAfter(id, len(evs))
	if j := e.job(id); j.Status != events.StatusCompleted || j.Description != "" {
		t.Fatalf("job after its meta ticket died: %s, description %q", j.Status, j.Description)
	}
	if n := testutil.ToFloat64(e.metrics.DeadLetters.WithLabelValues("ticket")); n != 0 {
		t.Fatalf("dead_letters_total{ticket} = %v, want 0", n)
	}
}

// The meta write changes no state, so a later re-emit (a redelivered stale
// ticket) repeats the event of the job's last change of state under that
// change's revision instead of announcing a second "completed".
func TestReemitAfterDescriptionRepeatsTheStatesRevision(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusCompleted, CurrentStep: events.StepDone, Seq: 3,
		LatexSeq: 3, Latex: goodLatex, PDFURL: "/jobs/" + id + "/pdf", Message: "PDF ready"})
	_, completedRev, err := e.store.Get(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e.ticket(events.Ticket{JobID: id, Stage: events.StageMeta, Seq: 3}, "meta-3")
	j := e.waitDescribed(id)
	if _, rev, err := e.store.Get(e.ctx, id); err != nil || rev <= completedRev || j.EventRev != completedRev {
		t.Fatalf("after the meta write: revision %d (%v), event_rev %d, want above %d and %d", rev, err, j.EventRev, completedRev, completedRev)
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.pipe.Stop(stopCtx)
	cancel()
	e.ticket(events.Ticket{JobID: id, Stage: events.StageCompile, Seq: 3}, "compile-3")
	cons, err := e.nats.JS.Consumer(e.ctx, events.StreamJobs, string(events.StageCompile))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	e.startPipeline()
	e.waitStatus(id, events.StatusCompleted)
	waitEmpty(t, e)
	e.waitIdle()
	if evs := e.eventsOf(id); len(evs) != 1 || evs[0].Revision != completedRev {
		t.Fatalf("re-emitted events:%s (revision %d), want one at revision %d", describe(evs), evs[0].Revision, completedRev)
	}
}
