package consumers_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// submitNew submits a valid request through the control operation and returns its id.
func (e *env) submitNew(mode string) string {
	e.t.Helper()
	id, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u1", Prompt: "fractions, grade 5", Mode: mode})
	if err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return id
}

// noEventsAfter waits until every request and ticket has been handled and fails
// if job id changed after its n-th event (a re-published event of the same
// revision is no change).
func (e *env) noEventsAfter(id string, n int) {
	e.t.Helper()
	e.waitIdle()
	evs := e.eventsOf(id)
	for _, ev := range evs[n:] {
		if ev.Revision > evs[n-1].Revision {
			e.t.Fatalf("job %s changed after it should have stopped:%s", id, describe(evs[n:]))
		}
	}
}

func TestSubmitStoresBeforeReplying(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""))
	id := e.submitNew("")
	if j, _, err := e.plane.Get(e.ctx, id); err != nil || j.UserID != "u1" {
		t.Fatalf("get right after submit: %v, %+v", err, j)
	}
	e.waitStatus(id, events.StatusCompleted)

	again, err := e.plane.Submit(e.ctx, events.JobRequest{JobID: strings.ToUpper(id), UserID: "u1", Prompt: "fractions, grade 5"})
	if err != nil || again != id {
		t.Fatalf("same request again = %q, %v; want %s accepted", again, err, id)
	}
	_, err = e.plane.Submit(e.ctx, events.JobRequest{JobID: id, UserID: "u1", Prompt: "something else"})
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("different request with the same id: %v, want ErrConflict", err)
	}
	n := len(e.eventsOf(id))
	e.noEventsAfter(id, n)
	if got := e.llm.CallsFor("design"); got != 1 {
		t.Errorf("design calls = %d, want 1", got)
	}

	for name, req := range map[string]events.JobRequest{
		"blank prompt":  {UserID: "u1", Prompt: "  "},
		"no user":       {Prompt: "p"},
		"bad job id":    {JobID: "job-1", UserID: "u1", Prompt: "p"},
		"bad mode":      {UserID: "u1", Prompt: "p", Mode: "fast"},
		"huge prompt":   {UserID: "u1", Prompt: strings.Repeat("x", events.MaxPromptBytes+1)},
		"retries > cap": {UserID: "u1", Prompt: "p", MaxRetries: intp(11)},
	} {
		if _, err := e.plane.Submit(e.ctx, req); !errors.Is(err, events.ErrInvalid) || events.CodeOf(err) != 400 {
			t.Errorf("%s: %v, want a 400 ErrInvalid", name, err)
		}
	}
}

func TestAbortCancelsRunningLLMCall(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(fakellm.Request) fakellm.Reply {
			started <- struct{}{}
			return fakellm.Reply{Content: "design", Delay: 10 * time.Minute}
		},
		fakellm.AnyStep: fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}), func(c *testpipeline.Setup) {
		c.Pipeline.LeaseTTL = 10 * time.Minute // no lease renewal within the test: only the watch can see the abort
	})
	id := e.submitNew("")
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("design call never started")
	}
	j, err := e.plane.Abort(e.ctx, events.JobChange{JobID: id})
	if err != nil || j.Status != events.StatusAborted {
		t.Fatalf("abort: %v, %+v", err, j)
	}
	// The worker gives up its 10-minute call at once and acks its ticket.
	waitCounter(t, func() float64 {
		return testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("design", "aborted"))
	}, 1)
	evs := e.waitStatus(id, events.StatusAborted)
	e.noEventsAfter(id, len(evs))
	if got := e.job(id); got.Status != events.StatusAborted || got.Design != "" {
		t.Fatalf("job after abort: %s, design %q", got.Status, got.Design)
	}
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: id}); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("second abort: %v, want a conflict naming the state", err)
	}
}

func TestAbortWhileWaitingForRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""), func(c *testpipeline.Setup) {
		c.Pipeline.RetryBase, c.Pipeline.RetryMax = time.Second, time.Second
	})
	e.llm.Close() // every call fails: the job waits in error for its retry
	id := e.submitNew("")
	e.waitStatus(id, events.StatusError)
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: id}); err != nil {
		t.Fatal(err)
	}
	n := len(e.waitStatus(id, events.StatusAborted))
	e.noEventsAfter(id, n) // the retry waits in the queue until its delay is past
}

func TestEditLatex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", brokenLatex, ""))
	id := e.submitNew(events.ModeManual)
	e.waitStatus(id, events.StatusWaitingManual)

	j, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: id, Latex: goodLatex})
	if err != nil || j.Status != events.StatusPending || j.CurrentStep != events.StepCompile {
		t.Fatalf("edit: %v, %+v", err, j)
	}
	e.waitStatus(id, events.StatusCompleted)
	if pdf, err := e.plane.PDF(e.ctx, id); err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf after edit: %v", err)
	}

	if _, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: id, Latex: brokenLatex}); err != nil {
		t.Fatal(err)
	}
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Line != 5 {
		t.Fatalf("failed edit: %+v, want the error at line 5", last.Error)
	}
	if _, err := e.plane.PDF(e.ctx, id); !errors.Is(err, events.ErrNotFound) || !strings.Contains(err.Error(), "waiting_manual") {
		t.Fatalf("pdf while waiting_manual: %v", err)
	}
	if got := e.llm.CallsFor("fix"); got != 0 {
		t.Errorf("fix calls = %d: a hand-edited document must not go to the LLM", got)
	}

	for name, edit := range map[string]events.LatexEdit{
		"blank":    {JobID: id, Latex: " \n"},
		"too big":  {JobID: id, Latex: strings.Repeat("x", events.MaxLatexBytes+1)},
		"no id":    {Latex: goodLatex},
		"bad utf8": {JobID: id, Latex: "\xff"},
	} {
		if _, err := e.plane.EditLatex(e.ctx, edit); events.CodeOf(err) != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	if _, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: uuid.NewString(), Latex: goodLatex}); events.CodeOf(err) != 404 {
		t.Errorf("unknown job: %v, want 404", err)
	}
}

func TestEditRefusedWhileRunning(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(fakellm.Request) fakellm.Reply {
			started <- struct{}{}
			return fakellm.Reply{Content: "design", Delay: 10 * time.Minute}
		},
	}))
	id := e.submitNew("")
	<-started
	e.waitStatus(id, events.StatusRunning)
	for name, call := range map[string]func() error{
		"edit": func() error {
			_, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: id, Latex: goodLatex})
			return err
		},
		"retry": func() error { _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id}); return err },
		"refine": func() error {
			_, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "x"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), "running") {
			t.Errorf("%s of a running job: %v, want a conflict naming the state", name, err)
		}
	}
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: id}); err != nil {
		t.Fatal(err)
	}
}

func TestRefineRegeneratesFromDesign(t *testing.T) {
	t.Parallel()
	second := strings.Replace(goodLatex, "Fractions", "Harder fractions", 1)
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "design 1"}, fakellm.Reply{Content: "design 2"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}, fakellm.Reply{Content: second}),
		"refine": fakellm.Script(fakellm.Reply{Content: "fractions, grade 5, harder"}),
	}))
	id := e.submitNew("")
	e.waitStatus(id, events.StatusCompleted)
	first, err := e.plane.PDF(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "make it harder"})
	if err != nil || j.CurrentStep != events.StepDesign || j.PDFURL != "" {
		t.Fatalf("refine: %v, %+v", err, j)
	}
	e.waitFor(id, "second completion", func(ev events.StatusEvent) bool {
		n := 0
		for _, ev := range e.eventsOf(id) {
			if ev.Status == events.StatusCompleted {
				n++
			}
		}
		return ev.Status == events.StatusCompleted && n == 2
	})
	refined, err := e.plane.PDF(e.ctx, id)
	if err != nil || bytes.Equal(first, refined) {
		t.Fatalf("refined PDF: %v (same bytes as before: %v)", err, bytes.Equal(first, refined))
	}
	got := e.job(id)
	if got.Prompt != "fractions, grade 5" || got.RevisedPrompt != "fractions, grade 5, harder" || got.Refinement != "" {
		t.Fatalf("prompts after refine: %q / %q / pending %q", got.Prompt, got.RevisedPrompt, got.Refinement)
	}
	calls := e.pipelineCalls()
	last := calls[len(calls)-2] // the second design call, before the second latex call
	if last.Step != "design" || !strings.Contains(last.LastUser(), "fractions, grade 5, harder") {
		t.Fatalf("second design call was %s asking %q, want the revised request", last.Step, last.LastUser())
	}
	conv, _, err := e.store.Conversation(e.ctx, got.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	var sawInstruction bool
	for _, m := range conv.Messages {
		roles = append(roles, m.Role)
		sawInstruction = sawInstruction || strings.Contains(m.Content, "make it harder")
	}
	// The system prompt, then design, latex, refine, design, latex: a user and an
	// assistant turn each.
	if len(conv.Messages) != 11 || !sawInstruction {
		t.Fatalf("conversation has %d turns %v (instruction kept: %v), want the whole dialogue of 5 exchanges", len(conv.Messages), roles, sawInstruction)
	}
	if _, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: " "}); events.CodeOf(err) != 400 {
		t.Errorf("blank instruction: %v, want 400", err)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Status: http.StatusUnauthorized, Content: "bad key"}, fakellm.Reply{Content: "design"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}))
	id := e.submitNew("")
	e.waitStatus(id, events.StatusWaitingManual)
	if j := e.job(id); j.CurrentStep != events.StepDesign {
		t.Fatalf("refused design left the job at %s", j.CurrentStep)
	}
	j, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id})
	if err != nil || j.Status != events.StatusPending || j.RetryCount != 0 {
		t.Fatalf("retry: %v, %+v", err, j)
	}
	e.waitStatus(id, events.StatusCompleted)

	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id}); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), "completed") {
		t.Errorf("retry of a completed job: %v, want a conflict naming the state", err)
	}
	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: uuid.NewString()}); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("retry of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: "not-a-uuid"}); events.CodeOf(err) != 400 {
		t.Errorf("retry with a bad id: %v, want 400", err)
	}

	bad := uuid.NewString()
	e.submit(events.JobRequest{JobID: bad, UserID: "u1", Prompt: " "})
	e.waitStatus(bad, events.StatusError)
	if _, err := e.plane.Retry(e.ctx, events.JobChange{JobID: bad}); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("retry of an invalid request: %v, want a conflict", err)
	}
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: bad}); !errors.Is(err, events.ErrConflict) || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("abort of an invalid request, which already ended: %v, want a conflict", err)
	}
}

func TestRetryAfterFixBudgetRunsTheFixAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "design"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: brokenLatex}),
		"fix":    fakellm.Script(fakellm.Reply{Content: brokenLatex}, fakellm.Reply{Content: goodLatex}),
	}))
	id, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u1", Prompt: "p", MaxRetries: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, events.StatusWaitingManual)
	j, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id})
	if err != nil || j.Status != events.StatusWaitingAIFix {
		t.Fatalf("retry: %v, %+v; want the fix stage again", err, j)
	}
	e.waitStatus(id, events.StatusCompleted)
	if got := e.llm.CallsFor("fix"); got != 2 {
		t.Errorf("fix calls = %d, want 2", got)
	}
}

func TestFollowEndsAtFinalState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""))
	id := e.submitNew("")
	ch, err := e.plane.Follow(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []events.StatusEvent
	for ev := range ch {
		got = append(got, ev)
	}
	if len(got) < 2 || got[len(got)-1].Status != events.StatusCompleted {
		t.Fatalf("followed:%s", describe(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Revision <= got[i-1].Revision {
			t.Fatalf("revisions out of order:%s", describe(got))
		}
	}
	// A finished job: its state, then the end.
	ch, err = e.plane.Follow(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Status != events.StatusCompleted {
		t.Fatalf("first event of a finished job: %s", ev.Status)
	}
	if _, open := <-ch; open {
		t.Fatal("stream of a finished job did not end")
	}
	if _, err := e.plane.Follow(e.ctx, uuid.NewString()); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("follow of an unknown job: %v", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""))
	var ids []string
	for _, user := range []string{"a", "b", "a"} {
		id, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: user, Prompt: "p"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		e.waitStatus(id, events.StatusCompleted)
	}
	all, err := e.plane.List(e.ctx, events.ListQuery{})
	if err != nil || len(all.Jobs) != 3 || all.Jobs[0].JobID != ids[2] || all.Truncated {
		t.Fatalf("list all: %v, %+v", err, all)
	}
	mine, err := e.plane.List(e.ctx, events.ListQuery{UserID: "a", Status: events.StatusCompleted, Limit: 1})
	if err != nil || len(mine.Jobs) != 1 || mine.Jobs[0].JobID != ids[2] || !mine.Truncated {
		t.Fatalf("list a, limit 1: %v, %+v", err, mine)
	}
	none, err := e.plane.List(e.ctx, events.ListQuery{Status: events.StatusRunning})
	if err != nil || len(none.Jobs) != 0 || none.Jobs == nil {
		t.Fatalf("list running: %v, %+v", err, none)
	}
	for _, q := range []events.ListQuery{{Status: "done"}, {Limit: -1}, {Limit: events.MaxListLimit + 1}} {
		if _, err := e.plane.List(e.ctx, q); events.CodeOf(err) != 400 {
			t.Errorf("list %+v: %v, want 400", q, err)
		}
	}
}

// waitCounter waits until get reaches want.
func waitCounter(t *testing.T, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("counter at %v, want %v", get(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// endlessLatex never finishes compiling: only a kill ends pdflatex.
const endlessLatex = "\\documentclass{article}\n\\begin{document}\n\\def\\x{\\x}\\x\n\\end{document}\n"

func TestAbortKillsRunningCompile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", endlessLatex, ""))
	id := e.submitNew("")
	e.waitFor(id, "compile running", func(ev events.StatusEvent) bool {
		return ev.Status == events.StatusRunning && ev.Step == events.StepCompile
	})
	if _, err := e.plane.Abort(e.ctx, events.JobChange{JobID: id}); err != nil {
		t.Fatal(err)
	}
	waitCounter(t, func() float64 {
		return testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("compile", "aborted"))
	}, 1)
	// The compile was killed by the abort, not by its own timeout (20s here).
	if got := histogramCount(t, e.metrics.CompileDuration.WithLabelValues("timeout")); got != 0 {
		t.Fatalf("%d compiles timed out: the abort did not stop pdflatex", got)
	}
	evs := e.waitStatus(id, events.StatusAborted)
	e.noEventsAfter(id, len(evs))
	if _, err := e.plane.PDF(e.ctx, id); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("pdf of an aborted job: %v", err)
	}
}

// histogramCount is how many observations a histogram holds.
func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
