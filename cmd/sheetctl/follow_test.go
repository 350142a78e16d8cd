package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

const jobID = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"

func event(status events.Status, step events.Step, message string) events.StatusEvent {
	return events.StatusEvent{JobID: jobID, UserID: "ada", Status: status, Step: step, Message: message,
		MaxRetries: 3, Time: time.Date(2025, 3, 1, 14, 5, 9, 0, time.Local)}
}

func testApp(json bool) (*app, *syncBuffer) {
	out := &syncBuffer{}
	a := &app{stdio: stdio{out: out, err: out}, progressEvery: 20 * time.Millisecond}
	a.opts.json = json
	a.opts.timeout = time.Minute
	return a, out
}

func TestFollowPrintsEventsAndProgress(t *testing.T) {
	a, out := testApp(false)
	fix := event(events.StatusWaitingAIFix, events.StepCompile, "Compile failed at line 12")
	fix.RetryCount = 1
	fix.Error = &events.ErrorInfo{Message: "Undefined control sequence.", Line: 12, Snippet: "l.12 \\foo"}
	ch := make(chan events.StatusEvent)
	go func() {
		defer close(ch)
		ch <- event(events.StatusRunning, events.StepCompile, "Compiling with pdflatex")
		time.Sleep(150 * time.Millisecond) // several progress intervals
		ch <- fix
		ch <- event(events.StatusCompleted, events.StepDone, "PDF ready")
	}()
	last, _, err := a.follow(testContext(t), jobID, ch)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if last.Status != events.StatusCompleted {
		t.Fatalf("follow returned %s, want completed", last.Status)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wantFirst := "2025-03-01 14:05:09 running        compile +0s    Compiling with pdflatex"
	wantFix := "2025-03-01 14:05:09 waiting_ai_fix compile +0s    [retry 1/3] Compile failed at line 12 | error: Undefined control sequence. (line 12)"
	wantLast := "2025-03-01 14:05:09 completed      done    +0s    PDF ready"
	if len(lines) < 4 || lines[0] != wantFirst || lines[len(lines)-2] != wantFix || lines[len(lines)-1] != wantLast {
		t.Fatalf("output:\n%s\nwant first %q, then progress, then %q and %q", out, wantFirst, wantFix, wantLast)
	}
	for _, l := range lines[1 : len(lines)-2] {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d still running at compile: nothing new for `).MatchString(l) {
			t.Fatalf("progress line %q, want \"<date> <time> still running at compile: nothing new for ...\"", l)
		}
	}
}

func TestFollowJSONPrintsEventsOnly(t *testing.T) {
	a, out := testApp(true)
	ch := make(chan events.StatusEvent, 2)
	ch <- event(events.StatusPending, events.StepDesign, "Job accepted")
	ch <- event(events.StatusAborted, events.StepLatex, "Aborted by user")
	close(ch)
	if _, _, err := a.follow(testContext(t), jobID, ch); err != nil {
		t.Fatalf("follow: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"status":"aborted"`) || !strings.Contains(lines[0], `"time":"2025-03-01T`) {
		t.Fatalf("JSON output:\n%s", out)
	}
}

// A final event replayed from an earlier run does not end the wait: the watch
// goes on to the job's latest run and closes after it.
func TestFollowReturnsTheLastRun(t *testing.T) {
	a, out := testApp(false)
	ch := make(chan events.StatusEvent, 4)
	ch <- event(events.StatusCompleted, events.StepDone, "PDF ready")
	ch <- event(events.StatusPending, events.StepCompile, "LaTeX edited by hand; compiling")
	ch <- event(events.StatusWaitingManual, events.StepCompile, "Compile failed")
	close(ch)
	last, _, err := a.follow(testContext(t), jobID, ch)
	if err != nil || last.Status != events.StatusWaitingManual {
		t.Fatalf("follow: %+v, %v; want the waiting_manual event", last, err)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("%d lines, want the 3 events:\n%s", n, out)
	}
}

func TestFollowEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		ch   func() chan events.StatusEvent
		want string
	}{
		{"timeout",
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			func() chan events.StatusEvent { return make(chan events.StatusEvent) },
			"wait for job " + jobID + ": timed out after 1m0s; the job goes on; follow it with: sheetctl watch " + jobID},
		{"interrupt",
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			func() chan events.StatusEvent { return make(chan events.StatusEvent) },
			"wait for job " + jobID + ": interrupted"},
		{"stream closed mid-run",
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), testTimeout)
			},
			func() chan events.StatusEvent {
				ch := make(chan events.StatusEvent, 1)
				ch <- event(events.StatusRunning, events.StepLatex, "")
				close(ch)
				return ch
			},
			"the status stream ended"},
		{"stream closed",
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), testTimeout)
			},
			func() chan events.StatusEvent { ch := make(chan events.StatusEvent); close(ch); return ch },
			"the status stream ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := testApp(false)
			ctx, cancel := tc.ctx()
			defer cancel()
			_, _, err := a.follow(ctx, jobID, tc.ch())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("follow: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestJobEndedError(t *testing.T) {
	manual := event(events.StatusWaitingManual, events.StepCompile, "Max retries exceeded")
	manual.Error = &events.ErrorInfo{Message: "Max retries exceeded: Undefined control sequence.", Line: 7,
		Snippet: "main.tex:7: Undefined control sequence.\nl.7 \\foo\n"}
	invalid := event(events.StatusError, events.StepPrompt, "Invalid request")
	invalid.Error = &events.ErrorInfo{Message: "invalid request: prompt is required"}
	for name, tc := range map[string]struct {
		ev   events.StatusEvent
		want string
	}{
		"with snippet": {manual, "job " + jobID + " waiting_manual at compile: Max retries exceeded: Undefined control sequence. (line 7)\n" +
			"main.tex:7: Undefined control sequence.\nl.7 \\foo"},
		"invalid request": {invalid, "job " + jobID + " error at prompt: invalid request: prompt is required"},
		"no error info":   {event(events.StatusAborted, events.StepLatex, "Aborted by user"), "job " + jobID + " aborted at latex: Aborted by user"},
		"after AI fixes": {manual, "job " + jobID + " waiting_manual at compile after 3 AI fixes: Max retries exceeded: Undefined control sequence. (line 7)\n" +
			"main.tex:7: Undefined control sequence.\nl.7 \\foo"},
	} {
		t.Run(name, func(t *testing.T) {
			after := ""
			if name == "after AI fixes" {
				after = "after 3 AI fixes"
			}
			if got := (&jobEndedError{ev: tc.ev, after: after}).Error(); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
