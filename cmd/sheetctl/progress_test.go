package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// llmSteps answers design and meta with text, latex with latex, and each fix
// with fix.
func llmSteps(latex, fix string) fakellm.Handler {
	return fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "A fractions worksheet: ten exercises."}),
		"latex":  fakellm.Script(fakellm.Reply{Content: latex}),
		"fix":    fakellm.Script(fakellm.Reply{Content: fix}),
		"meta":   fakellm.Script(fakellm.Reply{Content: "fractions"}),
	})
}

// A job whose LaTeX needed an AI fix: submit --wait shows the fix's events with
// dates and elapsed times and ends with one line saying it completed after 1 AI
// fix and where the PDF is.
func TestSubmitWaitAfterAnAIFix(t *testing.T) {
	s := testpipeline.StartWith(t, llmSteps(brokenLatex, goodLatex))
	dir := t.TempDir()
	r := runSheetctl(testContext(t), nil, "", dir, "--server", s.ClientURL(), "submit", "--wait", prompt)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	id := strings.TrimSuffix(strings.TrimPrefix(lines[0], "job "), " submitted")
	fix := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d waiting_ai_fix compile \+[0-9.]+m?s +Compile failed at line 3: .*asking the LLM for fix 1/3`)
	if !fix.MatchString(r.stdout) {
		t.Errorf("no waiting_ai_fix line with date, time and elapsed:\n%s", r.stdout)
	}
	final := regexp.MustCompile(`^completed in [0-9.]+m?s after 1 AI fix: PDF saved to ` +
		regexp.QuoteMeta(dir+"/"+id+".pdf") + ` \(\d+ bytes\)$`)
	if last := lines[len(lines)-1]; !final.MatchString(last) {
		t.Fatalf("last line %q, want %s\n%s", last, final, r.stdout)
	}
	if strings.Contains(r.stdout, "still ") {
		t.Errorf("a progress line although events kept coming:\n%s", r.stdout)
	}
}

// A job whose fixes all fail: the failure names the state, the step and the
// number of AI fixes.
func TestSubmitWaitAfterFailedAIFixes(t *testing.T) {
	s := testpipeline.StartWith(t, llmSteps(brokenLatex, brokenLatex))
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "--server", s.ClientURL(), "submit", "--wait", "--max-retries", "2", prompt)
	want := regexp.MustCompile(`^sheetctl: job [0-9a-f-]{36} waiting_manual at compile after 2 AI fixes: Max retries exceeded: .*\(line 3\)\n`)
	if r.code != exitFailure || !want.MatchString(r.stderr) {
		t.Fatalf("exit %d stderr %q, want 1 and %s\nstdout:\n%s", r.code, r.stderr, want, r.stdout)
	}
}

func TestJobRunCounts(t *testing.T) {
	at := func(sec int, st events.Status, step events.Step) events.StatusEvent {
		return events.StatusEvent{Status: st, Step: step, Time: time.Date(2025, 3, 1, 14, 5, sec, 0, time.UTC)}
	}
	var r jobRun
	for _, ev := range []events.StatusEvent{
		// An earlier run, replayed: it does not count.
		at(0, events.StatusPending, events.StepDesign), at(1, events.StatusError, events.StepDesign),
		at(2, events.StatusWaitingAIFix, events.StepCompile), at(3, events.StatusPending, events.StepCompile),
		at(4, events.StatusCompleted, events.StepDone),
		// The latest: a transient failure, two fixes (the second after a retry of the fix stage).
		at(10, events.StatusPending, events.StepCompile), at(11, events.StatusWaitingAIFix, events.StepCompile),
		at(12, events.StatusRunning, events.StepCompile), at(13, events.StatusPending, events.StepCompile),
		at(14, events.StatusWaitingAIFix, events.StepCompile), at(15, events.StatusError, events.StepCompile),
		at(16, events.StatusPending, events.StepCompile), at(20, events.StatusCompleted, events.StepDone),
	} {
		r.add(ev)
	}
	if got, want := r.after(), "after 2 AI fixes and 1 retry"; got != want {
		t.Errorf("after() = %q, want %q", got, want)
	}
	if got := r.elapsed(at(20, events.StatusCompleted, events.StepDone)); got != 10*time.Second {
		t.Errorf("elapsed %s, want 10s since the latest run's first event", got)
	}
}
