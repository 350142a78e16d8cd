package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// sendBatch submits a batch body: on sheetpipe.batch, or POST /batches with
// Content-Type ctype (JSON when empty) and query.
func sendBatch(t *testing.T, tr transport, body []byte, ctype, query string) result {
	t.Helper()
	switch tr := tr.(type) {
	case natsTransport:
		return tr.request(t, events.ControlSubject(events.OpBatch), body)
	case httpTransport:
		return tr.request(t, http.MethodPost, "/batches"+query, ctype, body)
	}
	t.Fatalf("transport %T", tr)
	return result{}
}

// getBatch asks for a batch's status: sheetpipe.batch.get or GET /batches/{id}.
func getBatch(t *testing.T, tr transport, id string) result {
	t.Helper()
	switch tr := tr.(type) {
	case natsTransport:
		return tr.request(t, events.ControlSubject(events.OpBatchGet), mustJSON(t, events.BatchRef{BatchID: id}))
	case httpTransport:
		return tr.request(t, http.MethodGet, "/batches/"+id, "", nil)
	}
	t.Fatalf("transport %T", tr)
	return result{}
}

// waitBatchDone polls the batch's status until it is done and returns it.
func waitBatchDone(t *testing.T, tr transport, id string) events.BatchStatus {
	t.Helper()
	var s events.BatchStatus
	waitUntil(t, "batch "+id+" done", func() bool {
		s = decode[events.BatchStatus](t, getBatch(t, tr, id))
		return s.Done
	})
	return s
}

// waitBatchDescribed waits until the meta stage, which runs beside the
// pipeline and may write a job after it finished, has described every job of
// batch s, and returns the batch's status then: no write follows.
func waitBatchDescribed(t *testing.T, tr transport, id string, s events.BatchStatus) events.BatchStatus {
	t.Helper()
	waitUntil(t, "batch "+id+" described", func() bool {
		for _, j := range s.Jobs {
			if got := get(t, tr, j.JobID); got.Description == "" && got.MetaError == "" {
				return false
			}
		}
		return true
	})
	return decode[events.BatchStatus](t, getBatch(t, tr, id))
}

// jobsOf is a batch body of n requests of user u, one prompt each.
func jobsOf(n int, u, prompt string) []map[string]any {
	jobs := make([]map[string]any, n)
	for i := range jobs {
		jobs[i] = map[string]any{"user_id": u, "prompt": fmt.Sprintf("%s %d", prompt, i)}
	}
	return jobs
}

func TestBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{KeepAlive: 20 * time.Millisecond})

	for _, tr := range f.transports() {
		t.Run(tr.name()+"/submit, status, resend", func(t *testing.T) {
			t.Parallel()
			batchID, explicit := uuid.NewString(), uuid.NewString()
			jobs := jobsOf(3, "u", "fractions batch "+tr.name())
			jobs[1]["job_id"] = strings.ToUpper(explicit)
			body := mustJSON(t, map[string]any{"batch_id": batchID, "jobs": jobs})
			r := sendBatch(t, tr, body, "", "")
			reply := decode[events.BatchReply](t, r)
			if tr.name() == "http" && (r.code != http.StatusAccepted || r.header.Get("Location") != "/batches/"+batchID) {
				t.Fatalf("POST /batches: %d, Location %q", r.code, r.header.Get("Location"))
			}
			if reply.BatchID != batchID || len(reply.JobIDs) != 3 || reply.JobIDs[1] != explicit ||
				len(slices.Compact(slices.Sorted(slices.Values(reply.JobIDs)))) != 3 {
				t.Fatalf("reply %+v, want batch %s with 3 distinct jobs, the second %s", reply, batchID, explicit)
			}
			s := waitBatchDone(t, tr, batchID)
			if s.BatchID != batchID || s.Total != 3 || !maps.Equal(s.Counts, map[events.Status]int{events.StatusCompleted: 3}) || s.CreatedAt.IsZero() {
				t.Fatalf("status %+v, want 3 completed", s)
			}
			s = waitBatchDescribed(t, tr, batchID, s)
			for i, j := range s.Jobs {
				got := get(t, tr, j.JobID)
				if j.JobID != reply.JobIDs[i] || got.BatchID != batchID || got.Revision != j.Revision || got.Prompt != jobs[i]["prompt"] {
					t.Fatalf("job %d: status shows %+v; job %s of batch %q at revision %d asks %q", i, j, got.ID, got.BatchID, got.Revision, got.Prompt)
				}
			}

			// The same batch again (a lost reply) returns the same jobs and changes none.
			if again := decode[events.BatchReply](t, sendBatch(t, tr, body, "", "")); !slices.Equal(again.JobIDs, reply.JobIDs) || again.BatchID != batchID {
				t.Fatalf("resend: %+v, want %+v", again, reply)
			}
			if after := decode[events.BatchStatus](t, getBatch(t, tr, batchID)); !slices.Equal(after.Jobs, s.Jobs) {
				t.Fatalf("resend changed the jobs: %+v, before %+v", after.Jobs, s.Jobs)
			}
			// The same batch id with other jobs is a conflict.
			jobs[2]["prompt"] = "something else"
			other := mustJSON(t, map[string]any{"batch_id": batchID, "jobs": jobs})
			if r := sendBatch(t, tr, other, "", ""); r.code != http.StatusConflict || !strings.Contains(r.errMessage(t), "different jobs") {
				t.Fatalf("same batch_id, other jobs: %s", r)
			}
		})

		t.Run(tr.name()+"/refused batches create nothing", func(t *testing.T) {
			t.Parallel()
			taken := submit(t, tr, "u", "fractions taken "+tr.name())
			tests := []struct {
				name string
				jobs func([]map[string]any) []map[string]any
				raw  string // the body instead, when set
				want string
				code int
			}{
				{"empty", func([]map[string]any) []map[string]any { return []map[string]any{} }, "", "1..1000 jobs, this one 0", 400},
				{"over 1000", func(j []map[string]any) []map[string]any { return append(j, jobsOf(998, "u", "many")...) }, "", "this one 1001", 400},
				{"bad third job", func(j []map[string]any) []map[string]any { delete(j[2], "user_id"); return j }, "", "jobs[2]: user_id is required", 400},
				{"wrong type", func(j []map[string]any) []map[string]any { j[2]["max_retries"] = "3"; return j }, "", "jobs[2]: max_retries must be a number", 400},
				{"same job id twice", func(j []map[string]any) []map[string]any { j[2]["job_id"] = j[0]["job_id"]; return j }, "",
					"jobs[2]: job_id", 400},
				{"job id of another request", func(j []map[string]any) []map[string]any { j[2]["job_id"] = taken; return j }, "",
					"jobs[2]: job " + taken + " already exists with a different request", 409},
				{"not an object", nil, `[{"user_id": "u", "prompt": "p"}]`, "not the expected JSON object", 400},
				{"a job not an object", nil, `{"jobs": [{"user_id": "u", "prompt": "p"}, "p"]}`, "jobs[1]: not a JSON object", 400},
				{"unknown field", nil, `{"jobs": [{"user_id": "u", "prompt": "p"}], "priority": "high"}`, "unknown field", 400},
				{"bad batch id", nil, `{"batch_id": "b-1", "jobs": [{"user_id": "u", "prompt": "p"}]}`, `batch_id "b-1" is not a UUID`, 400},
			}
			for _, tc := range tests {
				batchID := uuid.NewString()
				jobs, first := jobsOf(3, "u", "refused "+tc.name), uuid.NewString()
				jobs[0]["job_id"] = first
				body := []byte(tc.raw)
				if tc.jobs != nil {
					jobs = tc.jobs(jobs)
					body = mustJSON(t, map[string]any{"batch_id": batchID, "jobs": jobs})
				}
				r := sendBatch(t, tr, body, "", "")
				if r.code != tc.code || !strings.Contains(r.errMessage(t), tc.want) {
					t.Fatalf("%s: %s, want %d with %q", tc.name, r, tc.code, tc.want)
				}
				if r := getBatch(t, tr, batchID); r.code != http.StatusNotFound {
					t.Fatalf("%s: the refused batch is stored: %s", tc.name, r)
				}
				if r := tr.do(t, call{op: events.OpGet, id: first}); r.code != http.StatusNotFound {
					t.Fatalf("%s: a job of the refused batch was created: %s", tc.name, r)
				}
			}
		})

		t.Run(tr.name()+"/unknown batch", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if r := getBatch(t, tr, id); r.code != http.StatusNotFound || !strings.Contains(r.errMessage(t), "no batch "+id) {
				t.Fatalf("unknown batch: %s", r)
			}
			if r := getBatch(t, tr, "nope"); r.code != http.StatusBadRequest {
				t.Fatalf("batch id that is not a UUID: %s", r)
			}
		})
	}

	t.Run("http/ndjson", func(t *testing.T) {
		t.Parallel()
		ht := httpTransport{base: f.http.URL}
		batchID := uuid.NewString()
		lines := fmt.Sprintf("%s\n\n%s\n   \n", mustJSON(t, jobsOf(1, "u", "fractions nd")[0]), mustJSON(t, jobsOf(1, "u", "decimals nd")[0]))
		bad := lines + `{"user_id": "u", "prompt": "   "}` + "\n"
		if r := sendBatch(t, ht, []byte(bad), "application/x-ndjson", "?batch_id="+batchID); r.code != http.StatusBadRequest ||
			!strings.Contains(r.errMessage(t), "line 5: prompt is required") {
			t.Fatalf("ndjson with a blank prompt on line 5: %s", r)
		}
		if r := sendBatch(t, ht, []byte(lines+"fractions\n"), "application/x-ndjson", "?batch_id="+batchID); r.code != http.StatusBadRequest ||
			!strings.Contains(r.errMessage(t), "line 5: not a JSON object") {
			t.Fatalf("ndjson with text on line 5: %s", r)
		}
		if r := getBatch(t, ht, batchID); r.code != http.StatusNotFound {
			t.Fatalf("a refused batch is stored: %s", r)
		}
		r := sendBatch(t, ht, []byte(lines), "application/x-ndjson; charset=utf-8", "?batch_id="+batchID)
		reply := decode[events.BatchReply](t, r)
		if r.code != http.StatusAccepted || reply.BatchID != batchID || len(reply.JobIDs) != 2 {
			t.Fatalf("ndjson batch: %s", r)
		}
		s := decode[events.BatchStatus](t, ht.request(t, http.MethodGet, r.header.Get("Location"), "", nil))
		if s.Total != 2 || s.Jobs[0].JobID != reply.JobIDs[0] {
			t.Fatalf("status at Location %q: %+v", r.header.Get("Location"), s)
		}
		if r := sendBatch(t, ht, []byte(lines), "text/csv", ""); r.code != http.StatusUnsupportedMediaType {
			t.Fatalf("batch as text/csv: %s", r)
		}
		if r := sendBatch(t, ht, []byte(lines), "application/x-ndjson", "?batch_id="+batchID+"&user_id=u"); r.code != http.StatusBadRequest {
			t.Fatalf("unknown query parameter: %s", r)
		}
	})

	t.Run("http/events", func(t *testing.T) {
		t.Parallel()
		ht := httpTransport{base: f.http.URL}
		batchID := uuid.NewString()
		body := mustJSON(t, map[string]any{"batch_id": batchID, "jobs": jobsOf(3, "u", "fractions streamed")})
		if r := ht.request(t, http.MethodGet, "/batches/"+uuid.NewString()+"/events", "", nil); r.code != http.StatusNotFound {
			t.Fatalf("events of an unknown batch: %s", r)
		}
		reply := decode[events.BatchReply](t, sendBatch(t, ht, body, "", ""))
		statuses := readBatchStream(t, openStream(t, f.http.URL+"/batches/"+batchID+"/events"))
		first, last := statuses[0], statuses[len(statuses)-1]
		if len(first.Jobs) != 3 || first.Jobs[2].JobID != reply.JobIDs[2] {
			t.Fatalf("first status %+v, want every job", first)
		}
		if !last.Done || !maps.Equal(last.Counts, map[events.Status]int{events.StatusCompleted: 3}) {
			t.Fatalf("last status %+v, want done with 3 completed", last)
		}
		for i, s := range statuses[1:] {
			if len(s.Jobs) != 1 || s.Total != 3 || (s.Done && i != len(statuses)-2) {
				t.Fatalf("status %d: %+v, want the one job that changed, done only at the end", i+1, s)
			}
		}
		// A done batch's stream is its status alone.
		if again := readBatchStream(t, openStream(t, f.http.URL+"/batches/"+batchID+"/events")); len(again) != 1 || !again[0].Done {
			t.Fatalf("stream of a done batch: %+v", again)
		}
	})
}

// readBatchStream reads a batch's event stream to its end.
func readBatchStream(t *testing.T, s *sseStream) []events.BatchStatus {
	t.Helper()
	var out []events.BatchStatus
	for n := 1; ; n++ {
		fields, ok := s.frame(t)
		if !ok {
			break
		}
		if len(fields) != 3 || fields[0] != fmt.Sprintf("id: %d", n) || fields[1] != "event: batch" || !strings.HasPrefix(fields[2], "data: ") {
			t.Fatalf("frame %q is not id: %d, event: batch, data", fields, n)
		}
		var st events.BatchStatus
		if err := json.Unmarshal([]byte(strings.TrimPrefix(fields[2], "data: ")), &st); err != nil {
			t.Fatalf("frame data: %v", err)
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		t.Fatal("empty batch stream")
	}
	return out
}
