package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// brokenLatex has an undefined control sequence on line 5.
const brokenLatex = `\documentclass{article}
\usepackage{amsmath}
\begin{document}
\section*{Fractions}
\notacommand{1/2}
\end{document}
`

const crashDesign = "Outline: two exercises adding fractions with unlike denominators."

// TestCrashAtEveryFailpoint runs one job into a sheetd armed with one failpoint
// (SHEETPIPE_FAILPOINTS), which dies there: after the claim, after the LLM call or
// compile returned, after the result write, after the next ticket's publish. The
// job lives on an external NATS server; a fresh sheetd without failpoints picks it
// up. Whatever the point, the job completes with exactly one completed revision,
// its history follows the state machine, no LLM answer is asked for twice (the
// one recorded before a crash is reused) and nothing it produced is lost.
func TestCrashAtEveryFailpoint(t *testing.T) {
	sheetdBinary(t) // once, before the parallel subtests
	tests := []struct {
		failpoint string
		fix       bool // the LLM's LaTeX needs one AI fix
	}{
		{"prompt.after-write=exit", false},
		{"prompt.after-publish=exit", false},
		{"design.after-claim=exit", false},
		{"design.after-work=kill", false},
		{"design.after-write=exit", false},
		{"design.after-publish=exit", false},
		{"latex.after-work=exit", false},
		{"latex.after-write=kill", false},
		{"compile.after-claim=exit", false},
		{"compile.after-work=kill", false},
		{"compile.after-write=exit", false},
		{"compile.after-publish=exit", false},
		{"compile.after-write=exit", true}, // waiting_ai_fix written, fix ticket not published
		{"fix.after-claim=exit", true},
		{"fix.after-work=kill", true},
		{"fix.after-write=exit", true},
		{"fix.after-publish=exit", true},
		{"compile.after-publish=exit@2", true}, // the compile of the fixed LaTeX
	}
	for _, tc := range tests {
		name := tc.failpoint
		if tc.fix {
			name += " with fix"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			crashAt(t, tc.failpoint, tc.fix)
		})
	}
}

func crashAt(t *testing.T, failpoint string, needsFix bool) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	latexAnswer := testLatex
	if needsFix {
		latexAnswer = brokenLatex
	}
	d := &deployment{t: t, natsURL: srv.ClientURL(), env: fastRecovery,
		llm: fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
			"design": fakellm.Script(fakellm.Reply{Content: crashDesign}),
			"latex":  fakellm.Script(fakellm.Reply{Content: latexAnswer}),
			"fix":    fakellm.Script(fakellm.Reply{Content: testLatex}),
		}))}
	victim := d.startWorker("victim", "SHEETPIPE_FAILPOINTS="+failpoint)
	if !strings.Contains(victim.stderr.String(), "FAILPOINTS ARMED") {
		t.Errorf("an armed sheetd does not say so at start:\n%s", victim.stderr.String())
	}
	c := dial(t, ctx, srv.ClientURL())
	id := c.submit(testPrompt)

	wantCode := 3
	if strings.Contains(failpoint, "=kill") {
		wantCode = -1
	}
	if code := victim.wait(60 * time.Second); code != wantCode {
		t.Fatalf("victim exited %d, want %d\n%s", code, wantCode, victim.stderr.String())
	}
	died := time.Now()
	if !strings.Contains(victim.stderr.String(), "FAILPOINT HIT") {
		t.Fatalf("victim died without reaching %s\n%s", failpoint, victim.stderr.String())
	}

	rescuer := d.startWorker("rescuer")
	ready := time.Since(died)
	c.waitCompleted(id, rescuer.process)
	evs, completed := c.completedEvents(id)
	job, err := c.job(ctx, id) // read afresh: waitCompleted decodes over earlier reads
	if err != nil {
		t.Fatal(err)
	}
	h := checkHistory(t, id, evs)
	if completed != 1 || h.count(events.StatusCompleted) != 1 {
		t.Errorf("%d completed events, %d completed revisions, want 1 each:%s", completed, h.count(events.StatusCompleted), describe(evs))
	}
	for _, ev := range h {
		if ev.Status == events.StatusRunning && ev.Time.After(died) {
			t.Logf("%s: rescuer ready %s after the death, job running again after %s",
				failpoint, ready.Round(10*time.Millisecond), ev.Time.Sub(died).Round(10*time.Millisecond))
			break
		}
	}

	wantFix := 0
	if needsFix {
		wantFix = 1
	}
	if d, l, f := d.llm.CallsFor("design"), d.llm.CallsFor("latex"), d.llm.CallsFor("fix"); d != 1 || l != 1 || f != wantFix {
		t.Errorf("LLM calls design %d, latex %d, fix %d; want 1, 1, %d", d, l, f, wantFix)
	}
	if job.Design != crashDesign || job.Latex != strings.TrimSpace(testLatex) || job.RetryCount != wantFix {
		t.Errorf("job design %q, latex kept %v, retry_count %d (want %d)", job.Design,
			job.Latex == strings.TrimSpace(testLatex), job.RetryCount, wantFix)
	}
	if job.PDFURL != "/jobs/"+id+"/pdf" || job.Lease != nil || job.ErrorLog != nil {
		t.Errorf("completed job: pdf_url %q, lease %+v, error_log %+v", job.PDFURL, job.Lease, job.ErrorLog)
	}
	if pdf := c.pdf(id); !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("%s.pdf starts %q, want %%PDF", id, pdf[:min(len(pdf), 8)])
	}
	if first := h[0]; first.Status != events.StatusPending || first.Step != events.StepDesign {
		t.Errorf("first event %s/%s, want pending/design:%s", first.Status, first.Step, describe(h))
	}
}
