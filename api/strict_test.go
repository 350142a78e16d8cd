package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestUnknownFieldsRefused: a body with a field the contract does not have is
// refused with a 400 naming it (and the field it resembles) on both transports:
// submit, each change, a batch as JSON and as NDJSON. Without the refusal
// `{"priorty":"high","maxRetries":0}` ran at normal priority with 3 retries.
func TestUnknownFieldsRefused(t *testing.T) {
	t.Parallel()
	stub, _, nt, ht := startStub(t, api.Config{})
	const id = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	tests := []struct {
		name string
		c    call
		want string
	}{
		{"submit typo", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","prompt":"p","priorty":"high","maxRetries":0}`)}, `unknown field "priorty" (did you mean "priority"?)`},
		{"submit camel case", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","prompt":"p","maxRetries":0}`)}, `unknown field "maxRetries" (did you mean "max_retries"?)`},
		{"submit upper case", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","Prompt":"p"}`)}, `unknown field "Prompt" (did you mean "prompt"?)`},
		{"submit twice", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","prompt":"p","user_id":"v"}`)}, `field "user_id" is given twice`},
		{"retry", call{op: events.OpRetry, id: id, fields: map[string]any{"ifRevision": 2}}, `unknown field "ifRevision" (did you mean "if_revision"?)`},
		{"abort", call{op: events.OpAbort, id: id, fields: map[string]any{"reason": "done"}}, `unknown field "reason"`},
		{"refine", call{op: events.OpRefine, id: id, fields: map[string]any{"instructions": "harder"}}, `unknown field "instructions" (did you mean "instruction"?)`},
		{"latex", call{op: events.OpLatex, id: id, fields: map[string]any{"latex": "x", "compile": true}}, `unknown field "compile"`},
	}
	for _, tr := range []transport{nt, ht} {
		for _, tc := range tests {
			t.Run(tr.name()+"/"+tc.name, func(t *testing.T) {
				r := tr.do(t, tc.c)
				if r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), tc.want) {
					t.Fatalf("%s: %s, want 400 saying %q", tc.name, r, tc.want)
				}
			})
		}
	}
	t.Run("nats/get", func(t *testing.T) {
		r := nt.request(t, events.ControlSubject(events.OpGet), []byte(`{"job_id":"`+id+`","jobid":"`+id+`"}`))
		if r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), `unknown field "jobid" (did you mean "job_id"?)`) {
			t.Fatalf("get: %s", r)
		}
	})
	const want = `jobs[1]: unknown field "priorty" (did you mean "priority"?)`
	batch := []byte(`{"jobs":[{"user_id":"u","prompt":"ok"},{"user_id":"u","prompt":"p","priorty":"high"}]}`)
	for _, r := range []result{nt.request(t, events.ControlSubject(events.OpBatch), batch), ht.request(t, http.MethodPost, "/batches", "", batch)} {
		if r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), want) {
			t.Fatalf("batch: %s, want 400 saying %s", r, want)
		}
	}
	lines := []byte("{\"user_id\":\"u\",\"prompt\":\"ok\"}\n{\"user_id\":\"u\",\"prompt\":\"p\",\"priorty\":\"high\"}\n")
	if r := ht.request(t, http.MethodPost, "/batches", "application/x-ndjson", lines); r.code != http.StatusBadRequest ||
		!strings.Contains(r.errMessage(t), `line 2: unknown field "priorty" (did you mean "priority"?)`) {
		t.Fatalf("NDJSON batch: %s, want 400 naming line 2's field", r)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if stub.submits != 0 {
		t.Fatalf("%d submits reached the pipeline, want none", stub.submits)
	}
}
