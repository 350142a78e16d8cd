package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestInvalidUTF8Refused: a body whose text is not UTF-8 is refused with a 400
// naming the field on both transports, before anything reaches the pipeline;
// encoding/json would otherwise have replaced the bad bytes with U+FFFD.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	stub, _, nt, ht := startStub(t, api.Config{})
	const id = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	tests := []struct {
		name string
		c    call
		want string
	}{
		{"submit raw byte", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","prompt":"fractions ` + "\xff" + `"}`)}, "prompt is not valid UTF-8"},
		{"submit lone surrogate", call{op: events.OpSubmit, raw: []byte(`{"user_id":"u","prompt":"fractions \ud800"}`)}, "prompt is not valid UTF-8"},
		{"submit user_id", call{op: events.OpSubmit, raw: []byte(`{"user_id":"` + "\xc3(" + `","prompt":"p"}`)}, "user_id is not valid UTF-8"},
		{"refine", call{op: events.OpRefine, id: id, raw: []byte(`{"job_id":"` + id + `","instruction":"harder ` + "\xfe" + `"}`)}, "instruction is not valid UTF-8"},
		{"latex", call{op: events.OpLatex, id: id, raw: []byte(`{"job_id":"` + id + `","latex":"\\documentclass{article}` + "\xed\xa0\x80" + `"}`)}, "latex is not valid UTF-8"},
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
	batch := []byte(`{"jobs":[{"user_id":"u","prompt":"ok"},{"user_id":"u","prompt":"` + "\xff" + `"}]}`)
	for _, r := range []result{nt.request(t, events.ControlSubject(events.OpBatch), batch), ht.request(t, http.MethodPost, "/batches", "", batch)} {
		if r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), "jobs[1].prompt is not valid UTF-8") {
			t.Fatalf("batch: %s, want 400 saying jobs[1].prompt is not valid UTF-8", r)
		}
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if stub.submits != 0 {
		t.Fatalf("%d submits reached the pipeline, want none", stub.submits)
	}
}

// TestListLimitZeroRefused: an explicit limit of 0 is refused on both
// transports (the pipeline's List refuses the rest of what is outside 1..1000);
// an absent limit means the default.
func TestListLimitZeroRefused(t *testing.T) {
	t.Parallel()
	_, _, nt, ht := startStub(t, api.Config{})
	for _, tr := range []transport{nt, ht} {
		t.Run(tr.name(), func(t *testing.T) {
			r := tr.do(t, call{op: events.OpList, fields: map[string]any{"limit": 0, "status": "error"}})
			if r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), "limit 0 is outside 1..1000") {
				t.Fatalf("list with limit 0: %s, want 400 saying limit 0 is outside 1..1000", r)
			}
			for _, fields := range []map[string]any{nil, {"status": "error"}, {"limit": 1}, {"limit": 1000}} {
				if r := tr.do(t, call{op: events.OpList, fields: fields}); !r.ok() {
					t.Fatalf("list %v: %s", fields, r)
				}
			}
		})
	}
	for _, q := range []string{"00", "-0", "+0"} {
		if r := ht.request(t, http.MethodGet, "/jobs?limit="+q, "", nil); r.code != http.StatusBadRequest {
			t.Fatalf("GET /jobs?limit=%s: %s, want 400", q, r)
		}
	}
	list := events.ControlSubject(events.OpList)
	if r := nt.request(t, list, []byte(`{"limit":5,"bogus":1}`)); r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), `unknown field "bogus"`) {
		t.Fatalf("list with an unknown field: %s, want 400 naming it", r)
	}
	if r := nt.request(t, list, []byte(`{"limit":"5"}`)); r.code != http.StatusBadRequest {
		t.Fatalf("list with a text limit: %s, want 400", r)
	}
	if r := nt.request(t, list, []byte(`{"limit":null}`)); !r.ok() {
		t.Fatalf("list with limit null (absent): %s", r)
	}
}
