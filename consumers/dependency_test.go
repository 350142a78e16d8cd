package consumers_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// The worksheet and its answer key: each request, outline and document is told
// apart by its text, so one scripted LLM serves both jobs.
const (
	sheetPrompt = "SHEET: fraction sums for grade 5"
	keyPrompt   = "KEY: the answers to the fraction sums worksheet"
	sheetDesign = "Outline: SHEET fraction sums"
	keyDesign   = "Outline: KEY answers"
)

const sheetLatex = `\documentclass{article}
\begin{document}
\section*{Fraction sums WS-4711}
\begin{enumerate}
\item $\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\end{enumerate}
\end{document}`

const keyLatex = `\documentclass{article}
\begin{document}
\section*{Answer key}
\begin{enumerate}
\item $\frac{3}{4}$
\end{enumerate}
\end{document}`

// hold keeps the LLM calls whose last user turn contains key waiting until
// release. Tests release it at their end before the LLM server closes, which
// waits for the calls in progress.
type hold struct {
	key  string
	open chan struct{}
	once sync.Once
}

func newHold(key string) *hold { return &hold{key: key, open: make(chan struct{})} }

func (h *hold) release() { h.once.Do(func() { close(h.open) }) }

func (h *hold) wrap(next fakellm.Handler) fakellm.Handler {
	return func(req fakellm.Request) fakellm.Reply {
		if strings.Contains(req.LastUser(), h.key) {
			select {
			case <-h.open:
			case <-time.After(2 * time.Minute):
			}
		}
		return next(req)
	}
}

// worksheetLLM designs and writes the worksheet (sheet, its LaTeX) and the
// answer key; the worksheet's design calls wait for held.
func worksheetLLM(held *hold, sheet string) fakellm.Handler {
	return fakellm.ByStep(map[string]fakellm.Handler{
		"design": held.wrap(func(req fakellm.Request) fakellm.Reply {
			if strings.Contains(req.LastUser(), keyPrompt) {
				return fakellm.Reply{Content: keyDesign}
			}
			return fakellm.Reply{Content: sheetDesign}
		}),
		"latex": func(req fakellm.Request) fakellm.Reply {
			if strings.Contains(req.LastUser(), keyDesign) {
				return fakellm.Reply{Content: keyLatex}
			}
			return fakellm.Reply{Content: sheet}
		},
	})
}

// callsFor returns the calls of step whose request (any turn) contains text.
func callsFor(e *env, step, text string) []fakellm.Request {
	var out []fakellm.Request
	for _, c := range e.llm.Calls() {
		if c.Step == step && strings.Contains(c.LastUser(), text) {
			out = append(out, c)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startSheet submits the worksheet and waits until its design call is held.
func startSheet(e *env, mode string) string {
	e.t.Helper()
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "teacher", Prompt: sheetPrompt, Mode: mode})
	waitUntil(e.t, "worksheet design call", func() bool { return len(callsFor(e, "design", sheetPrompt)) > 0 })
	return id
}

// submitKey submits an answer key depending on deps and waits until it is
// stored waiting with a message containing waiting.
func submitKey(e *env, waiting string, deps ...string) string {
	e.t.Helper()
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "teacher", Prompt: keyPrompt, DependsOn: deps})
	e.waitFor(id, "pending: "+waiting, func(ev events.StatusEvent) bool {
		return ev.Status == events.StatusPending && strings.Contains(ev.Message, waiting)
	})
	return id
}

// noSweep leaves the wake-ups to the status events alone.
func noSweep(c *testpipeline.Setup) { c.Maintenance.Sweeper.Interval = time.Hour }

func TestDependentWaitsForItsDependency(t *testing.T) {
	t.Parallel()
	held := newHold(sheetPrompt)
	e := newEnv(t, worksheetLLM(held, sheetLatex), noSweep)
	t.Cleanup(held.release)
	sheet := startSheet(e, "")
	key := submitKey(e, "waiting for dependency "+sheet+" to complete", sheet)

	if j := e.job(key); !j.Blocked || j.Stage != "" || j.CurrentStep != events.StepDesign {
		t.Fatalf("waiting answer key: blocked %v, stage %q, step %s", j.Blocked, j.Stage, j.CurrentStep)
	}
	e.fx.WaitTickets(t, 1) // the worksheet's design ticket, held
	if n := len(callsFor(e, "design", keyPrompt)); n != 0 || len(e.eventsOf(key)) != 1 {
		t.Fatalf("answer key ran before its worksheet completed: %d design calls, events:%s", n, describe(e.eventsOf(key)))
	}

	held.release()
	evs := e.waitStatus(key, events.StatusCompleted)
	checkSequence(t, evs, []step{
		{events.StatusPending, events.StepDesign}, {events.StatusPending, events.StepDesign},
		{events.StatusRunning, events.StepDesign}, {events.StatusPending, events.StepLatex},
		{events.StatusRunning, events.StepLatex}, {events.StatusPending, events.StepCompile},
		{events.StatusRunning, events.StepCompile}, {events.StatusCompleted, events.StepDone},
	})
	if got := e.job(sheet); got.Status != events.StatusCompleted || got.Latex != sheetLatex {
		t.Fatalf("worksheet: %s, latex %q", got.Status, got.Latex)
	}
	design := callsFor(e, "design", keyPrompt)
	latex := callsFor(e, "latex", keyDesign)
	if len(design) != 1 || len(latex) != 1 {
		t.Fatalf("answer key: %d design and %d latex calls, want 1 each", len(design), len(latex))
	}
	for _, c := range []fakellm.Request{design[0], latex[0]} {
		if !strings.Contains(c.LastUser(), sheetLatex) || !strings.Contains(c.LastUser(), sheet) {
			t.Fatalf("%s request of the answer key lacks the worksheet's LaTeX:\n%s", c.Step, c.LastUser())
		}
	}
	if got := e.job(key); got.Latex != keyLatex || got.Blocked {
		t.Fatalf("answer key: latex %q, blocked %v", got.Latex, got.Blocked)
	}
}

func TestUnknownDependency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, worksheetLLM(newHold("nothing is held"), sheetLatex))
	missing := uuid.NewString()
	want := "depends_on: job " + missing + " does not exist"
	tests := []struct {
		name string
		run  func(t *testing.T, id string)
	}{
		{"request on jobs.prompt", func(t *testing.T, id string) {
			e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: keyPrompt, DependsOn: []string{missing}})
			ev := e.waitStatus(id, events.StatusError)[0]
			if ev.Step != events.StepPrompt || ev.Error == nil || !strings.Contains(ev.Error.Message, want) {
				t.Fatalf("event %+v, want error at step prompt saying %q", ev, want)
			}
		}},
		{"sheetpipe.submit", func(t *testing.T, id string) {
			_, err := e.plane.Submit(e.ctx, events.JobRequest{JobID: id, UserID: "u", Prompt: keyPrompt, DependsOn: []string{missing}})
			if !errors.Is(err, events.ErrInvalid) || events.CodeOf(err) != 400 || !strings.Contains(err.Error(), want) {
				t.Fatalf("submit: %v (code %d), want a 400 saying %q", err, events.CodeOf(err), want)
			}
			if _, _, err := e.store.Get(e.ctx, id); !errors.Is(err, kvstore.ErrNotFound) {
				t.Fatalf("refused submit created job %s: %v", id, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, uuid.NewString()) })
	}
	if n := e.llm.CallsFor("design"); n != 0 {
		t.Fatalf("%d design calls for jobs with an unknown dependency", n)
	}
}

func TestAbortedDependency(t *testing.T) {
	t.Parallel()
	held := newHold(sheetPrompt)
	e := newEnv(t, worksheetLLM(held, sheetLatex), noSweep)
	t.Cleanup(held.release)
	sheet := startSheet(e, "")
	waiting := "waiting for dependency " + sheet + " to complete"
	key := submitKey(e, waiting, sheet)
	gaveUp := submitKey(e, waiting, sheet)

	// A waiting dependent can be aborted; its dependency's end then leaves it be.
	if j, err := e.plane.Abort(e.ctx, events.JobChange{JobID: gaveUp}); err != nil || j.Status != events.StatusAborted || j.Blocked {
		t.Fatalf("abort of a waiting job: %v, %+v", err, j)
	}
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: sheet}); err != nil {
		t.Fatalf("abort worksheet: %v", err)
	}
	want := "dependency " + sheet + " was aborted"
	ev := e.waitStatus(key, events.StatusWaitingManual)
	last := ev[len(ev)-1]
	if last.Step != events.StepDesign || last.Error == nil || last.Error.Message != want {
		t.Fatalf("dependent's event %+v, want waiting_manual at design saying %q", last, want)
	}
	if j := e.job(key); j.ErrorMessage != want || j.Blocked {
		t.Fatalf("dependent: error %q, blocked %v", j.ErrorMessage, j.Blocked)
	}
	parkedLeavesActive(e, key)
	// Retry re-evaluates the dependencies: an aborted one never completes.
	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: key}); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), want) {
		t.Fatalf("retry: %v, want a conflict saying %q", err, want)
	}
	if j, err := e.plane.Abort(e.ctx, events.JobChange{JobID: key}); err != nil || j.Status != events.StatusAborted {
		t.Fatalf("abort of the dependent: %v, %+v", err, j)
	}
	e.noEventsAfter(gaveUp, len(e.eventsOf(gaveUp)))
	if j := e.job(gaveUp); j.Status != events.StatusAborted {
		t.Fatalf("aborted dependent is %s after its dependency ended", j.Status)
	}
	if n := len(callsFor(e, "design", keyPrompt)); n != 0 {
		t.Fatalf("%d design calls for dependents of an aborted job", n)
	}
}

func TestDependencyWaitingManual(t *testing.T) {
	t.Parallel()
	held := newHold(sheetPrompt)
	// In manual mode the worksheet's broken LaTeX waits for the user.
	e := newEnv(t, worksheetLLM(held, brokenLatex), noSweep)
	t.Cleanup(held.release)
	sheet := startSheet(e, events.ModeManual)
	key := submitKey(e, "waiting for dependency "+sheet+" to complete", sheet)

	held.release()
	e.waitStatus(sheet, events.StatusWaitingManual)
	want := "waiting for dependency " + sheet + ", which is waiting_manual (needs a manual fix)"
	e.waitFor(key, "message about the dependency's manual fix", func(ev events.StatusEvent) bool {
		return ev.Status == events.StatusPending && ev.Message == want
	})
	if j := e.job(key); !j.Blocked || len(callsFor(e, "design", keyPrompt)) != 0 {
		t.Fatalf("dependent of a job waiting for a fix: blocked %v, %d design calls", j.Blocked, len(callsFor(e, "design", keyPrompt)))
	}

	if _, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: sheet, Latex: sheetLatex}); err != nil {
		t.Fatalf("edit worksheet: %v", err)
	}
	e.waitStatus(sheet, events.StatusCompleted)
	e.waitStatus(key, events.StatusCompleted)
	latex := callsFor(e, "latex", keyDesign)
	if len(latex) != 1 || !strings.Contains(latex[0].LastUser(), sheetLatex) || strings.Contains(latex[0].LastUser(), `\notacommand`) {
		t.Fatalf("answer key's latex request does not carry the edited worksheet (%d calls)", len(latex))
	}
}

// TestWakeUpTwiceStartsOnce: two processes follow the status events, the
// sweeper re-evaluates waiting jobs every 50ms, and the worksheet's completion is
// delivered four times; the answer key is designed once.
func TestWakeUpTwiceStartsOnce(t *testing.T) {
	t.Parallel()
	held := newHold(sheetPrompt)
	e := newEnv(t, worksheetLLM(held, sheetLatex), func(c *testpipeline.Setup) { c.Maintenance.Sweeper.Interval = 50 * time.Millisecond })
	t.Cleanup(held.release)
	e.startPipeline()
	sheet := startSheet(e, "")
	key := submitKey(e, "waiting for dependency "+sheet+" to complete", sheet)

	var once sync.Once
	sub, err := e.nats.NC.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		var ev events.StatusEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.JobID != sheet || ev.Status != events.StatusCompleted {
			return
		}
		once.Do(func() {
			for range 3 {
				if err := e.nats.NC.Publish(events.SubjectStatus, m.Data); err != nil {
					t.Errorf("re-publish completion: %v", err)
				}
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	held.release()
	evs := e.waitStatus(key, events.StatusCompleted)
	e.noEventsAfter(key, len(evs))
	if n := len(callsFor(e, "design", keyPrompt)); n != 1 {
		t.Fatalf("answer key designed %d times", n)
	}
	started := 0
	for _, ev := range e.eventsOf(key) {
		if ev.Status == events.StatusRunning && ev.Step == events.StepDesign {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("answer key started design %d times:%s", started, describe(e.eventsOf(key)))
	}
}

// TestSweeperWakesWhenNoEventDoes: with the dependents consumer gone, no status
// event wakes the answer key; the sweeper's pass does.
func TestSweeperWakesWhenNoEventDoes(t *testing.T) {
	t.Parallel()
	held := newHold(sheetPrompt)
	e := newEnv(t, worksheetLLM(held, sheetLatex), func(c *testpipeline.Setup) { c.Maintenance.Sweeper.Interval = 100 * time.Millisecond })
	t.Cleanup(held.release)
	sheet := startSheet(e, "")
	key := submitKey(e, "waiting for dependency "+sheet+" to complete", sheet)
	if err := e.nats.JS.DeleteConsumer(e.ctx, events.StreamEvents, broker.ConsumerDependents); err != nil {
		t.Fatal(err)
	}
	held.release()
	e.waitStatus(sheet, events.StatusCompleted)
	e.waitStatus(key, events.StatusCompleted)
	if n := len(callsFor(e, "design", keyPrompt)); n != 1 {
		t.Fatalf("answer key designed %d times", n)
	}
}
