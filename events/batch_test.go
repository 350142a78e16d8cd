package events

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestBatchDecodeAndValidate(t *testing.T) {
	const id = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	tests := []struct {
		name  string
		lines bool
		data  string
		want  string // substring of the error; "" for valid
	}{
		{"json", false, `{"batch_id":"` + id + `","jobs":[{"user_id":"u","prompt":"p"}]}`, ""},
		{"ndjson with blank lines", true, "\n{\"user_id\":\"u\",\"prompt\":\"p\"}\n  \n{\"user_id\":\"u\",\"prompt\":\"q\"}", ""},
		{"empty", false, `{"jobs":[]}`, "1..1000 jobs, this one 0"},
		{"no jobs field", false, `{}`, "this one 0"},
		{"only blank lines", true, "\n \n", "this one 0"},
		{"bad index", false, `{"jobs":[{"user_id":"u","prompt":"p"},{"user_id":"u","prompt":" "}]}`, "jobs[1]: prompt is required"},
		{"bad line", true, "{\"user_id\":\"u\",\"prompt\":\"p\"}\n\n{\"prompt\":\"p\"}", "line 3: user_id is required"},
		{"text line", true, "{\"user_id\":\"u\",\"prompt\":\"p\"}\nfractions", "line 2: not a JSON object"},
		{"duplicate ids", false, `{"jobs":[{"job_id":"` + id + `","user_id":"u","prompt":"p"},{"job_id":"` + strings.ToUpper(id) + `","user_id":"u","prompt":"q"}]}`,
			"jobs[1]: job_id " + id + " is also the job_id of jobs[0]"},
		{"bad batch id", false, `{"batch_id":"x","jobs":[{"user_id":"u","prompt":"p"}]}`, `batch_id "x" is not a UUID`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decode := DecodeBatch
			if tc.lines {
				decode = DecodeBatchLines
			}
			b, err := decode([]byte(tc.data))
			if err == nil {
				err = b.Validate(DefaultMaxRetries)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want ErrInvalid with %q", err, tc.want)
			case strings.Count(err2s(err), ErrInvalid.Error()) > 1:
				t.Fatalf("error %q names its class twice", err)
			}
		})
	}
	over := BatchRequest{Jobs: make([]JobRequest, MaxBatchJobs+1)}
	if err := over.Validate(DefaultMaxRetries); err == nil || !strings.Contains(err.Error(), "this one 1001") {
		t.Fatalf("1001 jobs: %v", err)
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestBatchAssignIsStable(t *testing.T) {
	own := uuid.NewString()
	b := BatchRequest{BatchID: strings.ToUpper("0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"),
		Jobs: []JobRequest{{UserID: "u", Prompt: "p"}, {JobID: strings.ToUpper(own), UserID: "u", Prompt: "q"}}}
	again := b
	again.Jobs = append([]JobRequest(nil), b.Jobs...)
	ids, err := b.Assign()
	if err != nil {
		t.Fatal(err)
	}
	ids2, err := again.Assign()
	if err != nil {
		t.Fatal(err)
	}
	if ids[1] != own || ids[0] != ids2[0] || ids[0] != BatchJobID("0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", 0) {
		t.Fatalf("ids %v and %v", ids, ids2)
	}
	if u, err := uuid.Parse(ids[0]); err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("derived id %s is not a UUIDv4", ids[0])
	}
	if BatchJobID(b.BatchID, 1) == ids[0] || BatchJobID(uuid.NewString(), 0) == ids[0] {
		t.Fatal("derived ids repeat across indexes or batches")
	}
	d1, _ := b.Digest()
	d2, _ := again.Digest()
	again.Jobs[0].Prompt = "other"
	d3, _ := again.Digest()
	if d1 != d2 || d1 == d3 {
		t.Fatalf("digests %s %s %s: want equal for the same jobs only", d1, d2, d3)
	}
}

func TestBatchTally(t *testing.T) {
	jobs := []BatchJob{{JobID: "a", Status: StatusPending, Step: StepDesign, Revision: 1}, {JobID: "b", Status: StatusMissing}}
	s := NewBatchStatus("x", time.Time{}, jobs)
	if s.Done || s.Total != 2 || !maps.Equal(s.Counts, map[Status]int{StatusPending: 1, StatusMissing: 1}) {
		t.Fatalf("status %+v", s)
	}
	tally := NewBatchTally(s)
	if _, ok := tally.Apply(StatusEvent{JobID: "a", Status: StatusRunning, Revision: 1}); ok {
		t.Fatal("an event at a known revision changed the tally")
	}
	if _, ok := tally.Apply(StatusEvent{JobID: "c", Status: StatusRunning, Revision: 9}); ok {
		t.Fatal("another job's event changed the tally")
	}
	got, ok := tally.Apply(StatusEvent{JobID: "a", Status: StatusCompleted, Step: StepDone, Revision: 5})
	if !ok || got.Done || len(got.Jobs) != 1 || got.Jobs[0].JobID != "a" || got.Counts[StatusCompleted] != 1 {
		t.Fatalf("after a's completion: %+v", got)
	}
	got, ok = tally.Refresh(NewBatchStatus("x", time.Time{}, []BatchJob{
		{JobID: "a", Status: StatusCompleted, Step: StepDone, Revision: 5},
		{JobID: "b", Status: StatusError, Step: StepPrompt, Revision: 2}}))
	if !ok || !got.Done || len(got.Jobs) != 1 || got.Jobs[0].JobID != "b" ||
		!maps.Equal(got.Counts, map[Status]int{StatusCompleted: 1, StatusError: 1}) {
		t.Fatalf("after refresh: %+v, want done (an invalid request has ended)", got)
	}
}
