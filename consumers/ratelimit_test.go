package consumers_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// withLLM sets the client configuration of the env's fake LLM.
func withLLM(fn func(*ai.Config)) envOption {
	return func(s *testpipeline.Setup) { s.LLM = fn }
}

// TestRateLimitHintIsWaitedWithoutARetry: a 429 with Retry-After: 2 on the
// design call hands the job back with the message "rate limited by the LLM
// provider; next try in 2s" and its retry_count untouched; the design is asked
// again no sooner than 2s later, and the job completes with no retry counted
// (the fixture's own back-off is 20ms).
func TestRateLimitHintIsWaitedWithoutARetry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []time.Time
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(fakellm.Request) fakellm.Reply {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, time.Now())
			if len(asked) == 1 {
				return fakellm.Reply{Status: http.StatusTooManyRequests, Content: "slow down",
					Header: http.Header{"Retry-After": {"2"}}}
			}
			return fakellm.Reply{Content: "outline"}
		},
		"latex": fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"meta":  metaReplies(testDescription, testTags),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	var limited []events.StatusEvent
	for _, ev := range evs {
		if ev.RetryCount != 0 {
			t.Fatalf("event with retry_count %d: %s", ev.RetryCount, describe(evs))
		}
		if ev.Message == "rate limited by the LLM provider; next try in 2s" {
			limited = append(limited, ev)
		}
	}
	if len(limited) != 1 || limited[0].Status != events.StatusPending || limited[0].Step != events.StepDesign {
		t.Fatalf("want one pending design event saying the wait: %s", describe(evs))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[1].Sub(asked[0]) < 2*time.Second {
		t.Fatalf("design asked at %v: want twice, 2s apart or more", asked)
	}
	if j := e.job(id); j.RetryCount != 0 {
		t.Fatalf("job retry_count %d, want 0", j.RetryCount)
	}
}

// limitedModel answers every call to model with a 429 asking for a minute, and
// every other call as steps does.
func limitedModel(model string) fakellm.Handler {
	ok := steps("outline", goodLatex, "")
	return func(req fakellm.Request) fakellm.Reply {
		if req.Model == model {
			return fakellm.Reply{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"60"}}}
		}
		return ok(req)
	}
}

// TestWaitBeyondMaxWaitSwitchesModel: with LLM_MAX_WAIT=1s, a 429 asking for
// 60s makes the step ask its fallback model, and the event says which model
// answered after what.
func TestWaitBeyondMaxWaitSwitchesModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, limitedModel("big"), withLLM(func(c *ai.Config) {
		c.Model, c.MaxWait, c.Fallbacks = "big", time.Second, []string{"small"}
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	want := "answered by fallback model small after big: rate limited for 1m0s, more than LLM_MAX_WAIT (1s): Design ready"
	if !hasMessage(evs, want) {
		t.Fatalf("no event starting %q: %s", want, describe(evs))
	}
	if j := e.job(id); j.RetryCount != 0 {
		t.Fatalf("retry_count %d, want 0", j.RetryCount)
	}
}

// TestWaitBeyondMaxWaitWithoutFallbackFails: with no fallback, the same wait
// is a transient failure that counts a retry, and spent retries park the job
// with an error naming LLM_MAX_WAIT.
func TestWaitBeyondMaxWaitWithoutFallbackFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, limitedModel("big"), withLLM(func(c *ai.Config) { c.Model, c.MaxWait = "big", time.Second }))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", MaxRetries: intp(1)})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if !hasMessage(evs, "Transient failure in design; retry 1/1") {
		t.Fatalf("no counted retry: %s", describe(evs))
	}
	if j := e.job(id); !strings.Contains(j.ErrorMessage, "more than LLM_MAX_WAIT (1s)") {
		t.Fatalf("error_message %q, want it to name LLM_MAX_WAIT", j.ErrorMessage)
	}
}

// TestUnknownModelFallsBack: the latex step's model is unknown to the provider
// (404): its own fallback (LLM_MODEL_LATEX_FALLBACK) answers at once, and the
// event says so.
func TestUnknownModelFallsBack(t *testing.T) {
	t.Parallel()
	ok := steps("outline", goodLatex, "")
	e := newEnv(t, func(req fakellm.Request) fakellm.Reply {
		if req.Model == "gone" {
			return fakellm.Reply{Status: http.StatusNotFound, Content: "The model `gone` does not exist"}
		}
		return ok(req)
	}, withLLM(func(c *ai.Config) {
		c.StepModels = map[string]string{ai.StepLatex: "gone"}
		c.Fallbacks = []string{"unused"}
		c.StepFallbacks = map[string][]string{ai.StepLatex: {"here"}}
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	if want := "answered by fallback model here after gone: unknown model (404): LaTeX ready"; !hasMessage(evs, want) {
		t.Fatalf("no event starting %q: %s", want, describe(evs))
	}
	var latexModels []string
	for _, c := range e.llm.Calls() {
		if c.Step == "latex" {
			latexModels = append(latexModels, c.Model)
		}
	}
	if strings.Join(latexModels, ",") != "gone,here" {
		t.Fatalf("latex asked %v, want gone then here", latexModels)
	}
}

func hasMessage(evs []events.StatusEvent, prefix string) bool {
	for _, ev := range evs {
		if strings.HasPrefix(ev.Message, prefix) {
			return true
		}
	}
	return false
}
