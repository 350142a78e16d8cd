package consumers_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// testPrices are the LLM_PRICES of the usage tests: 1 US dollar per million
// tokens in, 2 out.
var testPrices = ai.Prices{"gpt-4o-mini": {Input: 1, Output: 2}}

// withPrices sets the processes' LLM_PRICES to testPrices.
func withPrices(s *testpipeline.Setup) { s.Pipeline.Prices = testPrices }

// usageLLM answers every step with its own token counts: design 10+20, latex
// 30+40 (broken LaTeX first, then good), fix 50+60, refine 70+80, description
// 5+7, tags 3+4.
func usageLLM() fakellm.Handler {
	return fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline", PromptTokens: 10, CompletionTokens: 20}),
		"latex": fakellm.Script(fakellm.Reply{Content: brokenLatex, PromptTokens: 30, CompletionTokens: 40},
			fakellm.Reply{Content: goodLatex, PromptTokens: 30, CompletionTokens: 40}),
		"fix":    fakellm.Script(fakellm.Reply{Content: goodLatex, PromptTokens: 50, CompletionTokens: 60}),
		"refine": fakellm.Script(fakellm.Reply{Content: "fractions, harder", PromptTokens: 70, CompletionTokens: 80}),
		"meta": func(req fakellm.Request) fakellm.Reply {
			if isDescription(req) {
				return fakellm.Reply{Content: testDescription, PromptTokens: 5, CompletionTokens: 7}
			}
			return fakellm.Reply{Content: testTags, PromptTokens: 3, CompletionTokens: 4}
		},
	})
}

func totals(p, c, calls int64) events.Totals {
	return events.Totals{PromptTokens: p, CompletionTokens: c, Calls: calls, CostUSD: float64(p+2*c) / 1e6}
}

func sameTotals(a, b events.Totals) bool {
	return a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens && a.Calls == b.Calls &&
		math.Abs(a.CostUSD-b.CostUSD) < 1e-12
}

// TestUsageCountsEveryCall: a job that needs a fix, is described and refined
// counts every paid call once in its usage, by step, with its cost at
// LLM_PRICES; the totals equal the sum of the usage recorded on its
// conversation's answers plus the meta stage's calls; the metrics and the
// user's daily counter say the same.
func TestUsageCountsEveryCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usageLLM(), withPrices)
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "usage-user", Prompt: "fractions"})
	first := e.waitStatus(id, events.StatusCompleted)
	e.waitDescribed(id)
	if _, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "make it harder"}); err != nil {
		t.Fatal(err)
	}
	rev := first[len(first)-1].Revision
	e.waitFor(id, "completed after the refinement", func(ev events.StatusEvent) bool {
		return ev.Status == events.StatusCompleted && ev.Revision > rev
	})
	e.waitIdle()
	j := e.waitJob(id, "second description", func(j *events.Job) bool { return j.MetaSeq == j.LatexSeq })

	want := map[string]events.Totals{
		"design": totals(2*10, 2*20, 2), "latex": totals(2*30, 2*40, 2), "fix": totals(50, 60, 1),
		"refine": totals(70, 80, 1), "meta": totals(2*(5+3), 2*(7+4), 4),
	}
	if j.Usage == nil {
		t.Fatal("job has no usage")
	}
	var sum events.Totals
	for step, w := range want {
		if got := j.Usage.Steps[step]; !sameTotals(got, w) {
			t.Errorf("usage of %s %+v, want %+v", step, got, w)
		}
		sum.Add(w)
	}
	if len(j.Usage.Steps) != len(want) || !sameTotals(j.Usage.Totals, sum) {
		t.Errorf("job usage %+v, want %+v in steps %v", j.Usage.Totals, sum, want)
	}
	if calls := int64(len(e.llm.Calls())); j.Usage.Calls != calls {
		t.Errorf("job counts %d calls, the LLM answered %d", j.Usage.Calls, calls)
	}

	// The conversation records each answer's model and usage: with the meta
	// stage's calls, they are the job's totals.
	conv, _, err := e.store.Conversation(e.ctx, j.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	recorded := want["meta"]
	for _, m := range conv.Messages {
		if m.Role != "assistant" {
			continue
		}
		if m.Model != "gpt-4o-mini" || m.Usage == nil {
			t.Fatalf("answer of %s/%d records model %q, usage %+v", m.Stage, m.Seq, m.Model, m.Usage)
		}
		recorded.Add(totals(m.Usage.PromptTokens, m.Usage.CompletionTokens, 1))
	}
	if !sameTotals(recorded, j.Usage.Totals) {
		t.Errorf("conversation and meta record %+v, the job counts %+v", recorded, j.Usage.Totals)
	}

	for step, w := range want {
		p := testutil.ToFloat64(e.metrics.LLMTokens.WithLabelValues(step, "gpt-4o-mini", "prompt"))
		c := testutil.ToFloat64(e.metrics.LLMTokens.WithLabelValues(step, "gpt-4o-mini", "completion"))
		cost := testutil.ToFloat64(e.metrics.LLMCost.WithLabelValues(step, "gpt-4o-mini"))
		if int64(p) != w.PromptTokens || int64(c) != w.CompletionTokens || math.Abs(cost-w.CostUSD) > 1e-12 {
			t.Errorf("metrics of %s: tokens %v+%v, cost %v; want %+v", step, p, c, cost, w)
		}
	}

	u, err := e.plane.Usage(e.ctx, events.UsageQuery{UserID: "usage-user"})
	if err != nil {
		t.Fatal(err)
	}
	if !sameTotals(u.Totals, j.Usage.Totals) {
		t.Errorf("usage of the user %+v, the job counts %+v", u.Totals, j.Usage.Totals)
	}
}

// TestRedeliveredAnswerCountsOnce: a worker recorded the design answer (with
// its usage) and counted it in the user's daily counter, then died before
// writing the job. The takeover reuses the answer: no new call, and the answer
// counts once in the job and once in the counter.
func TestRedeliveredAnswerCountsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("a different outline", goodLatex, ""), withPrices)
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusRunning, CurrentStep: events.StepDesign,
		Stage: events.StageDesign, Seq: 1, Lease: &events.Lease{Owner: "dead-worker", ExpiresAt: time.Now().Add(-time.Second)}})
	now := time.Now().UTC()
	_, _, err := e.store.Converse(e.ctx, id, id, func(c *events.Conversation) error {
		c.Messages = append(c.Messages,
			events.Message{Role: "system", Content: "sys", Stage: events.StageDesign, Seq: 1, Time: now},
			events.Message{Role: "user", Content: "fractions", Stage: events.StageDesign, Seq: 1, Time: now},
			events.Message{Role: "assistant", Content: "recorded outline", Stage: events.StageDesign, Seq: 1, Time: now,
				Model: "gpt-4o-mini", Usage: &events.MessageUsage{PromptTokens: 100, CompletionTokens: 200}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The dead worker counted it before dying.
	item := kvstore.UsageItem{Seq: 1, Totals: totals(100, 200, 1)}
	if err := e.store.CountUsage(e.ctx, "u", now, id, []kvstore.UsageItem{item}); err != nil {
		t.Fatal(err)
	}
	e.ticket(events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}, "redelivered")
	e.waitStatus(id, events.StatusCompleted)
	e.waitIdle()
	j := e.waitJob(id, "description", func(j *events.Job) bool { return j.MetaSeq == j.LatexSeq })
	if n := e.llm.CallsFor("design"); n != 0 {
		t.Fatalf("%d design calls; the recorded answer should have been reused", n)
	}
	if got := j.Usage.Steps["design"]; !sameTotals(got, totals(100, 200, 1)) {
		t.Errorf("design usage %+v, want the recorded answer's once", got)
	}
	want := totals(100+30+5, 200+40+7, 4) // design (recorded), latex, description, tags (no tokens)
	if !sameTotals(j.Usage.Totals, want) {
		t.Errorf("job usage %+v, want %+v", j.Usage.Totals, want)
	}
	u, err := e.plane.Usage(e.ctx, events.UsageQuery{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if !sameTotals(u.Totals, want) {
		t.Errorf("user's counter %+v, want the job's %+v", u.Totals, want)
	}
}

// TestTokenBudgetStopsTheJob: a job whose budget its design and LaTeX used up
// compiles (no LLM call) but asks for no fix: it waits for a human with the
// budget and the tokens used in its error; the meta stage does not describe it
// either. A retry grants a fresh budget and the fix runs.
func TestTokenBudgetStopsTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usageLLM())
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", TokenBudget: 50})
	evs := e.waitFor(id, "a final status", events.StatusEvent.Final)
	var compiled bool
	for _, ev := range evs {
		compiled = compiled || ev.Status == events.StatusWaitingAIFix
	}
	j := e.job(id)
	used := int64(10 + 20 + 30 + 40)
	if j.Status != events.StatusWaitingManual || !compiled || !strings.Contains(j.ErrorMessage, "token budget") || !strings.Contains(j.ErrorMessage, "100 tokens used of a budget of 50") {
		t.Fatalf("job %s (compiled %v): error_message %q; want the token budget with 100 used of 50:%s", j.Status, compiled, j.ErrorMessage, describe(evs))
	}
	if j.Usage.Tokens() != used || e.llm.CallsFor("fix") != 0 {
		t.Fatalf("usage %+v, fix calls %d: no call past the budget", j.Usage.Totals, e.llm.CallsFor("fix"))
	}
	e.waitIdle()
	if j := e.job(id); j.Description != "" || !strings.Contains(j.MetaError, "token budget") || e.llm.CallsFor("meta") != 0 {
		t.Fatalf("meta over budget: description %q, meta_error %q, %d calls", j.Description, j.MetaError, e.llm.CallsFor("meta"))
	}

	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id}); err != nil {
		t.Fatal(err)
	}
	rev := evs[len(evs)-1].Revision
	after := e.waitFor(id, "a final status after the retry", func(ev events.StatusEvent) bool {
		return ev.Final() && ev.Revision > rev
	})
	if last := after[len(after)-1]; last.Status != events.StatusCompleted {
		t.Fatalf("after the retry the job is %s: %s", last.Status, last.Message)
	}
	if j := e.job(id); e.llm.CallsFor("fix") != 1 || j.Usage.Tokens() != used+50+60 || j.BudgetBase != used {
		t.Fatalf("after the retry: %d fix calls, usage %+v, budget base %d", e.llm.CallsFor("fix"), j.Usage.Totals, j.BudgetBase)
	}
}

// TestTokenBudgetLimit: SHEETPIPE_JOB_TOKEN_BUDGET is the budget of a request
// that sets none and the most one may set: more is refused naming both, for a
// submit and for a job of a batch (which then creates nothing).
func TestTokenBudgetLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usageLLM(), func(s *testpipeline.Setup) { s.Control.TokenBudget = 1000 })
	_, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u", Prompt: "fractions", TokenBudget: 1001})
	if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "token_budget 1001") || !strings.Contains(err.Error(), "SHEETPIPE_JOB_TOKEN_BUDGET 1000") {
		t.Fatalf("token_budget over the limit: %v", err)
	}
	b := events.BatchRequest{Jobs: []events.JobRequest{{UserID: "u", Prompt: "a"}, {UserID: "u", Prompt: "b", TokenBudget: 5000}}}
	if _, err := e.plane.SubmitBatch(e.ctx, b); !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "jobs[1]") ||
		!strings.Contains(err.Error(), "SHEETPIPE_JOB_TOKEN_BUDGET") {
		t.Fatalf("batch with a token_budget over the limit: %v", err)
	}
	if len(e.jobsWithEvents()) != 0 {
		t.Fatalf("refused requests made jobs: %v", e.jobsWithEvents())
	}
	id, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u", Prompt: "fractions"})
	if err != nil {
		t.Fatal(err)
	}
	small, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u", Prompt: "fractions", TokenBudget: 10})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := e.job(id).TokenBudget, e.job(small).TokenBudget; a != 1000 || b != 10 {
		t.Fatalf("token budgets %d (default) and %d (asked 10), want 1000 and 10", a, b)
	}
}
