package consumers_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/sheetpipe/sheetpipe/events"
)

// TestUnknownFieldOnJobsPrompt: a request on jobs.prompt with a field the
// contract does not have (a typo of priority, max_retries in camel case, a field
// given twice) is not run with defaults: it becomes a job in error at step
// prompt whose message names the field, with the request's user_id; no LLM call.
func TestUnknownFieldOnJobsPrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	for _, tc := range []struct{ name, body, want string }{
		{"typo", `{"job_id":"%s","user_id":"alice","prompt":"fractions","priorty":"high"}`, `unknown field "priorty" (did you mean "priority"?)`},
		{"camel case", `{"job_id":"%s","user_id":"alice","prompt":"fractions","maxRetries":0}`, `unknown field "maxRetries" (did you mean "max_retries"?)`},
		{"given twice", `{"job_id":"%s","user_id":"alice","prompt":"fractions","prompt":"decimals"}`, `field "prompt" is given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			e.publish(fmt.Appendf(nil, tc.body, id), id)
			evs := e.waitStatus(id, events.StatusError)
			if evs[0].Step != events.StepPrompt || evs[0].Error == nil || !strings.Contains(evs[0].Error.Message, tc.want) {
				t.Fatalf("event %+v error %+v, want a rejection saying %q", evs[0], evs[0].Error, tc.want)
			}
			if evs[0].UserID != "alice" {
				t.Fatalf("user_id %q, want the request's alice", evs[0].UserID)
			}
		})
	}
	e.waitIdle()
	if n := len(e.llm.Calls()); n != 0 {
		t.Fatalf("%d LLM calls for refused requests", n)
	}
}

// TestOfflineProviderIsNoLLMCall: a job made by the offline provider (no LLM
// server) completes, described and tagged, without a sample of
// sheetpipe_llm_request_duration_seconds or sheetpipe_llm_tokens_total: they
// count calls to a language model only (TestHappyPath checks that those are).
func TestOfflineProviderIsNoLLMCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "teacher-1", Prompt: "a fractions worksheet for grade 5"})
	e.waitStatus(id, events.StatusCompleted)
	e.waitIdle()
	if n := testutil.ToFloat64(e.metrics.StageMessages.WithLabelValues("design", "ok")); n < 1 {
		t.Fatalf("stage_messages_total{design,ok} = %v: the design stage did not run", n)
	}
	var calls, tokens float64
	for m := range collect(e.metrics.LLMDuration) {
		calls += float64(m.GetHistogram().GetSampleCount())
	}
	for m := range collect(e.metrics.LLMTokens) {
		tokens += m.GetCounter().GetValue()
	}
	if calls != 0 || tokens != 0 {
		t.Fatalf("llm_request_duration_seconds counts %v calls and llm_tokens_total %v tokens for the offline provider, want none", calls, tokens)
	}
}

// collect yields the series of c.
func collect(c prometheus.Collector) func(func(*dto.Metric) bool) {
	return func(yield func(*dto.Metric) bool) {
		ch := make(chan prometheus.Metric, 64)
		go func() { c.Collect(ch); close(ch) }()
		for m := range ch {
			var d dto.Metric
			if err := m.Write(&d); err == nil && !yield(&d) {
				for range ch {
				}
				return
			}
		}
	}
}
