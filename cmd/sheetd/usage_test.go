package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// TestCrashAfterAnswerCountsOnce: a sheetd killed after the LLM answered (the
// answer recorded in the conversation, the job not yet written: failpoint
// <stage>.after-work) leaves the answer to the rescuer, which reuses it. The
// job's usage counts each paid call once (as many calls as the LLM answered,
// the tokens of each) and the user's daily counter (sheetpipe.usage) says the
// same.
func TestCrashAfterAnswerCountsOnce(t *testing.T) {
	sheetdBinary(t)
	for _, failpoint := range []string{"design.after-work=kill", "fix.after-work=kill"} {
		t.Run(failpoint, func(t *testing.T) {
			t.Parallel()
			crashCounting(t, failpoint)
		})
	}
}

func crashCounting(t *testing.T, failpoint string) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	d := &deployment{t: t, natsURL: srv.ClientURL(), env: append(fastRecovery, "LLM_PRICES=gpt-4o-mini=1:2"),
		llm: fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
			"design": fakellm.Script(fakellm.Reply{Content: crashDesign, PromptTokens: 10, CompletionTokens: 20}),
			"latex":  fakellm.Script(fakellm.Reply{Content: brokenLatex, PromptTokens: 30, CompletionTokens: 40}),
			"fix":    fakellm.Script(fakellm.Reply{Content: testLatex, PromptTokens: 50, CompletionTokens: 60}),
			"meta":   fakellm.Script(fakellm.Reply{Content: "a worksheet", PromptTokens: 1, CompletionTokens: 2}),
		}))}
	victim := d.startWorker("victim", "SHEETPIPE_FAILPOINTS="+failpoint)
	c := dial(t, ctx, srv.ClientURL())
	id := c.submit(testPrompt)
	if code := victim.wait(60 * time.Second); code != -1 || !strings.Contains(victim.stderr.String(), "FAILPOINT HIT") {
		t.Fatalf("victim exited %d, want killed at %s\n%s", code, failpoint, victim.stderr.String())
	}
	rescuer := d.startWorker("rescuer")
	c.waitCompleted(id, rescuer.process)
	var job *events.Job
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := c.job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.LatexSeq != 0 && j.MetaSeq == j.LatexSeq {
			job = j
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not described within 60s (meta_error %q)", id, j.MetaError)
		}
		time.Sleep(50 * time.Millisecond)
	}

	calls := map[string]int64{}
	for _, r := range d.llm.Calls() {
		calls[r.Step]++
	}
	if calls["design"] != 1 || calls["latex"] != 1 || calls["fix"] != 1 || calls["meta"] != 2 {
		t.Fatalf("LLM calls %v, want design, latex and fix once, meta twice (the recorded answer reused)", calls)
	}
	want := events.Totals{PromptTokens: 10 + 30 + 50 + 2*1, CompletionTokens: 20 + 40 + 60 + 2*2, Calls: 5}
	want.CostUSD = float64(want.PromptTokens+2*want.CompletionTokens) / 1e6
	if job.Usage == nil || job.Usage.PromptTokens != want.PromptTokens || job.Usage.CompletionTokens != want.CompletionTokens ||
		job.Usage.Calls != want.Calls || math.Abs(job.Usage.CostUSD-want.CostUSD) > 1e-12 {
		t.Fatalf("job usage %+v, want %+v", job.Usage, want)
	}
	for step, n := range calls {
		if got := job.Usage.Steps[step].Calls; got != n {
			t.Errorf("usage of %s counts %d calls, the LLM answered %d", step, got, n)
		}
	}

	req, _ := json.Marshal(events.UsageQuery{UserID: "teacher"})
	msg, err := c.nc.RequestWithContext(ctx, events.ControlSubject(events.OpUsage), req)
	if err != nil {
		t.Fatal(err)
	}
	var u events.UsageReply
	if err := json.Unmarshal(msg.Data, &u); err != nil {
		t.Fatalf("usage reply %s: %v", msg.Data, err)
	}
	if u.UserID != "teacher" || u.Totals.Tokens() != want.Tokens() || u.Calls != want.Calls || math.Abs(u.CostUSD-want.CostUSD) > 1e-12 {
		t.Fatalf("sheetpipe.usage %s, want the job's %+v", msg.Data, want)
	}
}
