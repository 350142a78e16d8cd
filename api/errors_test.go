package api_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestErrorClasses sends each endpoint a request of each error class, over both
// transports, and checks the code and that the message says why.
func TestErrorClasses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	nc := natsTransport{f.client}
	completed := submit(t, nc, "u", "fractions")
	running := submit(t, nc, "u", "fractions "+markSlow+" errors-running")
	aborted := submit(t, nc, "u", "fractions "+markSlow+" errors-aborted")
	f.waitStatus(t, completed, 0, events.StatusCompleted)
	f.waitFor(t, running, 0, "running", func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })
	decode[any](t, nc.do(t, call{op: events.OpAbort, id: aborted}))
	unknown := uuid.NewString()
	bigLatex := `\documentclass{article}\begin{document}` + strings.Repeat("x", events.MaxLatexBytes) + `\end{document}`

	tests := []struct {
		name     string
		call     call
		code     int
		message  string
		natsOnly bool // the case has no HTTP form (HTTP puts the id in the path)
	}{
		{"submit not JSON", call{op: events.OpSubmit, raw: []byte("make me a worksheet")}, 400, "not a JSON object", false},
		{"submit blank prompt", call{op: events.OpSubmit, fields: map[string]any{"user_id": "u", "prompt": "  \n"}}, 400, "prompt is required", false},
		{"submit without user", call{op: events.OpSubmit, fields: map[string]any{"prompt": "fractions"}}, 400, "user_id is required", false},
		{"submit invalid job id", call{op: events.OpSubmit, fields: map[string]any{"job_id": "job-1", "user_id": "u", "prompt": "p"}}, 400, "not a UUID", false},
		{"submit wrong type", call{op: events.OpSubmit, fields: map[string]any{"user_id": "u", "prompt": "p", "max_retries": "three"}}, 400, "max_retries must be a number", false},
		{"submit unknown priority", call{op: events.OpSubmit, fields: map[string]any{"user_id": "u", "prompt": "p", "priority": "urgent"}}, 400, `priority "urgent" is not`, false},
		{"submit taken job id", call{op: events.OpSubmit, fields: map[string]any{"job_id": completed, "user_id": "v", "prompt": "other"}}, 409, "already exists with a different request", false},

		{"get invalid id", call{op: events.OpGet, id: "not-a-uuid"}, 400, "not a UUID", false},
		{"get unknown job", call{op: events.OpGet, id: unknown}, 404, "no job " + unknown, false},
		{"get without id", call{op: events.OpGet}, 400, "job_id is required", true},
		{"get bad body", call{op: events.OpGet, raw: []byte(`["job"]`)}, 400, "not the expected JSON object", true},
		{"get unknown field", call{op: events.OpGet, id: completed, fields: map[string]any{"revision": 3}}, 400, `unknown field "revision"`, true},

		{"latex blank", call{op: events.OpLatex, id: completed, fields: map[string]any{"latex": " "}}, 400, "latex is required", false},
		{"latex oversized", call{op: events.OpLatex, id: completed, fields: map[string]any{"latex": bigLatex}}, 400, "more than the 524288 allowed", false},
		{"latex unknown field", call{op: events.OpLatex, id: completed, fields: map[string]any{"latex": goodLatex, "compile": true}}, 400, `unknown field "compile"`, false},
		{"latex not JSON", call{op: events.OpLatex, id: completed, raw: []byte(goodLatex)}, 400, "not the expected JSON object", false},
		{"latex invalid id", call{op: events.OpLatex, id: "42", fields: map[string]any{"latex": goodLatex}}, 400, "not a UUID", false},
		{"latex unknown job", call{op: events.OpLatex, id: unknown, fields: map[string]any{"latex": goodLatex}}, 404, "no job " + unknown, false},
		{"latex running job", call{op: events.OpLatex, id: running, fields: map[string]any{"latex": goodLatex}}, 409, "it is running", false},
		{"latex aborted job", call{op: events.OpLatex, id: aborted, fields: map[string]any{"latex": goodLatex}}, 409, "it is aborted", false},

		{"retry invalid id", call{op: events.OpRetry, id: "not-a-uuid"}, 400, "not a UUID", false},
		{"retry unknown job", call{op: events.OpRetry, id: unknown}, 404, "no job " + unknown, false},
		{"retry completed job", call{op: events.OpRetry, id: completed}, 409, "cannot retry job " + completed + ": it is completed", false},
		{"retry running job", call{op: events.OpRetry, id: running}, 409, "it is running", false},

		{"refine blank instruction", call{op: events.OpRefine, id: completed, fields: map[string]any{"instruction": ""}}, 400, "instruction is required", false},
		{"refine unknown field", call{op: events.OpRefine, id: completed, fields: map[string]any{"instruction": "more", "tone": "kind"}}, 400, `unknown field "tone"`, false},
		{"refine unknown job", call{op: events.OpRefine, id: unknown, fields: map[string]any{"instruction": "more"}}, 404, "no job " + unknown, false},
		{"refine running job", call{op: events.OpRefine, id: running, fields: map[string]any{"instruction": "more"}}, 409, "cannot refine job " + running + ": it is running", false},
		{"refine aborted job", call{op: events.OpRefine, id: aborted, fields: map[string]any{"instruction": "more"}}, 409, "it is aborted", false},

		{"abort invalid id", call{op: events.OpAbort, id: "not-a-uuid"}, 400, "not a UUID", false},
		{"abort unknown job", call{op: events.OpAbort, id: unknown}, 404, "no job " + unknown, false},
		{"abort aborted job", call{op: events.OpAbort, id: aborted}, 409, "cannot abort job " + aborted + ": it is aborted", false},
		{"abort completed job", call{op: events.OpAbort, id: completed}, 409, "it is completed", false},

		{"list bad status", call{op: events.OpList, fields: map[string]any{"status": "done"}}, 400, `status "done" is not one of`, false},
		{"list limit too big", call{op: events.OpList, fields: map[string]any{"limit": 5000}}, 400, "limit 5000 is outside 1..1000", false},
		{"list negative limit", call{op: events.OpList, fields: map[string]any{"limit": -1}}, 400, "limit -1 is outside", false},
		{"list unknown field", call{op: events.OpList, fields: map[string]any{"owner": "u"}}, 400, `"owner"`, false},
	}
	for _, tr := range f.transports() {
		t.Run(tr.name(), func(t *testing.T) {
			for _, tc := range tests {
				if tc.natsOnly && tr.name() != "nats" {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					r := tr.do(t, tc.call)
					if r.code != tc.code {
						t.Fatalf("got %s, want code %d", r, tc.code)
					}
					if msg := r.errMessage(t); !strings.Contains(msg, tc.message) {
						t.Fatalf("error %q does not say %q", msg, tc.message)
					}
				})
			}
		})
	}

	t.Run("failures are logged without bodies", func(t *testing.T) {
		logs := f.logs.String()
		for _, want := range []string{`"msg":"control request failed"`, `"op":"abort"`, `"job_id":"` + aborted + `"`, `"code":409`, `"transport":"http"`, `"transport":"nats"`} {
			if !strings.Contains(logs, want) {
				t.Fatalf("logs lack %s:\n%s", want, logs)
			}
		}
		if strings.Contains(logs, "underline") || strings.Contains(logs, "xxxxxxxx") {
			t.Fatal("a request body reached the logs")
		}
	})
}
