package events

import (
	"errors"
	"strings"
	"testing"
)

// TestUnknownFieldsRefused: a field the contract does not have, one whose name
// differs only in case, and one given twice are refused on every decoder (job
// request, batch as JSON and as lines, each change), naming the field and the
// known one it resembles; the request keeps its job_id and user_id so that
// jobs.prompt can report the refusal on that job.
func TestUnknownFieldsRefused(t *testing.T) {
	req := func(extra string) string {
		return `{"job_id":"` + someID + `","user_id":"alice","prompt":"p"` + extra + `}`
	}
	for _, tc := range []struct{ name, data, want string }{
		{"typo", req(`,"priorty":"high"`), `unknown field "priorty" (did you mean "priority"?)`},
		{"camel case", req(`,"maxRetries":0`), `unknown field "maxRetries" (did you mean "max_retries"?)`},
		{"other case", `{"job_id":"` + someID + `","user_id":"alice","PROMPT":"p"}`, `unknown field "PROMPT" (did you mean "prompt"?)`},
		{"far from any", req(`,"colour":"red"`), `unknown field "colour"`},
		{"short", req(`,"x":1`), `unknown field "x"`},
		{"long name", req(`,"` + strings.Repeat("a", 300) + `":1`), `unknown field "aaaa`},
		{"given twice", req(`,"prompt":"q"`), `field "prompt" is given twice`},
		{"null unknown", req(`,"priorty":null`), `unknown field "priorty"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tc.data))
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeRequest(%.80s) = %v, want ErrInvalid saying %s", tc.data, err, tc.want)
			}
			if r.JobID != someID || r.UserID != "alice" {
				t.Fatalf("DecodeRequest(%.80s) lost the job_id or user_id: %+v", tc.data, r)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("refusal repeats a huge name: %d bytes", len(err.Error()))
			}
		})
	}
	if _, err := DecodeRequest([]byte(req(`,"colour":"red"`))); strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("suggests a field for a name close to none: %v", err)
	}

	_, err := DecodeBatch([]byte(`{"jobs":[{"user_id":"u","prompt":"p"},{"user_id":"u","prompt":"p","priorty":"low"}]}`))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `jobs[1]: unknown field "priorty" (did you mean "priority"?)`) {
		t.Fatalf("batch: %v", err)
	}
	_, err = DecodeBatch([]byte(`{"batchid":"` + someID + `","jobs":[{"user_id":"u","prompt":"p"}]}`))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `unknown field "batchid" (did you mean "batch_id"?)`) {
		t.Fatalf("batch field: %v", err)
	}
	_, err = DecodeBatchLines([]byte("{\"user_id\":\"u\",\"prompt\":\"p\"}\n{\"user_id\":\"u\",\"prompt\":\"p\",\"max_retry\":1}\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `line 2: unknown field "max_retry" (did you mean "max_retries"?)`) {
		t.Fatalf("batch lines: %v", err)
	}
	for _, tc := range []struct {
		v          any
		data, want string
	}{
		{&Refinement{}, `{"job_id":"` + someID + `","instructions":"harder"}`, `unknown field "instructions" (did you mean "instruction"?)`},
		{&LatexEdit{}, `{"job_id":"` + someID + `","latex":"x","ifRevision":2}`, `unknown field "ifRevision" (did you mean "if_revision"?)`},
		{&JobChange{}, `{"JOB_ID":"` + someID + `"}`, `unknown field "JOB_ID" (did you mean "job_id"?)`},
		{&JobRef{}, `{"job_id":"` + someID + `","job_id":"` + someID + `"}`, `field "job_id" is given twice`},
		{&ListQuery{}, `{"limit":5,"stauts":"error"}`, `unknown field "stauts" (did you mean "status"?)`},
		{&BatchRef{}, `{"batch_id":"` + someID + `","jobs":[]}`, `unknown field "jobs"`},
	} {
		if err := DecodeControl([]byte(tc.data), tc.v); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("DecodeControl(%s, %T) = %v, want ErrInvalid saying %s", tc.data, tc.v, err, tc.want)
		}
	}
	var q ListQuery
	if err := DecodeControl([]byte(`{"status":"error","user_id":"u","limit":5,"priority":"low","batch_id":"`+someID+`","text":"x","before":""}`), &q); err != nil {
		t.Fatalf("every list field: %v", err)
	}
}
