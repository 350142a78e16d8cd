package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
)

// forgedHeader marks the events a test forges, so the fixture's own record of
// the pipeline's events leaves them out.
const forgedHeader = "X-Test-Forged"

// forge publishes data on jobs.status under a Nats-Msg-Id of the attacker's
// choosing, as anyone allowed to publish there can.
func (f *fixture) forge(t *testing.T, data []byte) {
	t.Helper()
	msg := &nats.Msg{Subject: events.SubjectStatus, Data: data, Header: nats.Header{forgedHeader: []string{"1"}}}
	if _, err := f.nats.JS.PublishMsg(f.ctx, msg, jetstream.WithMsgID(uuid.NewString())); err != nil {
		t.Fatal(err)
	}
}

// forgeCompleted publishes an event saying job id completed at rev with an
// attacker's PDF.
func (f *fixture) forgeCompleted(t *testing.T, id string, rev uint64) {
	t.Helper()
	data, err := json.Marshal(events.StatusEvent{JobID: id, UserID: "u", Status: events.StatusCompleted, Step: events.StepDone,
		PDFURL: "https://attacker.example/evil.pdf", Revision: rev, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	f.forge(t, data)
}

// waitDropped waits until the event streams dropped n events for reason.
func (f *fixture) waitDropped(t *testing.T, reason string, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d %s events dropped", n, reason), func() bool {
		return testutil.ToFloat64(f.metrics.EventsDropped.WithLabelValues("sse", reason)) >= float64(n)
	})
}

// TestEventStreamsDropForgedEvents: events claiming a running job completed,
// with an attacker's pdf_url, at its revision or one it has not reached, and a
// malformed event naming it, never reach a client of the job's stream or of
// its batch's stream, and do not end them: each is counted and logged, and the
// streams go on to the job's real end.
func TestEventStreamsDropForgedEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	ht := httpTransport{base: f.http.URL}
	batchID := uuid.NewString()
	reply := decode[events.BatchReply](t, sendBatch(t, ht, mustJSON(t, map[string]any{"batch_id": batchID,
		"jobs": []map[string]any{{"user_id": "u", "prompt": "fractions " + markSlow + " forged"}}}), "", ""))
	id := reply.JobIDs[0]
	f.waitFor(t, id, 0, "running", func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })

	jobStream := openEvents(t, f.http.URL, id)
	first, ok := jobStream.next(t)
	if !ok || first.Status != events.StatusRunning {
		t.Fatalf("first event %+v, want the job running", first)
	}
	batchStream := openStream(t, f.http.URL+"/batches/"+batchID+"/events")
	if s := nextBatch(t, batchStream); s.Done || s.Jobs[0].Status != events.StatusRunning {
		t.Fatalf("first batch status %+v, want its job running", s)
	}

	// Events at revisions a stream already holds are skipped unchecked, so the
	// forgeries name later ones: another job's write, and one not reached.
	other := submit(t, ht, "u", "fractions "+markSlow+" forged-other")
	_, otherRev, err := f.store.Get(f.ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	f.forgeCompleted(t, id, otherRev)
	f.forgeCompleted(t, id, otherRev+1000)
	f.forge(t, []byte(`{"job_id":"`+id+`","status":"completed","revision":"soon"}`))
	// Both streams drop both; the malformed one is the job stream's alone (the
	// batch stream cannot tell whose it is).
	f.waitDropped(t, "mismatch", 4)
	f.waitDropped(t, "malformed", 1)
	logs := f.pipeLogs.String()
	if !strings.Contains(logs, `"msg":"status event dropped"`) || !strings.Contains(logs, `"job_id":"`+id+`"`) ||
		!strings.Contains(logs, `"reason":"mismatch"`) {
		t.Errorf("no warning naming the job and the reason:\n%s", logs)
	}

	decode[any](t, ht.do(t, call{op: events.OpAbort, id: id}))
	if ev, ok := jobStream.next(t); !ok || ev.Status != events.StatusAborted || ev.PDFURL != "" {
		t.Fatalf("job stream after the forgeries: %+v (%v), want the real abort", ev, ok)
	}
	if ev, ok := jobStream.next(t); ok {
		t.Fatalf("job stream goes on after the abort with %+v", ev)
	}
	s := nextBatch(t, batchStream)
	if !s.Done || s.Jobs[0].Status != events.StatusAborted {
		t.Fatalf("batch stream after the forgeries: %+v, want its job aborted", s)
	}
}

// nextBatch reads one frame of a batch stream.
func nextBatch(t *testing.T, s *sseStream) events.BatchStatus {
	t.Helper()
	fields, ok := s.frame(t)
	if !ok || len(fields) != 3 || fields[1] != "event: batch" {
		t.Fatalf("batch frame %q (%v)", fields, ok)
	}
	var st events.BatchStatus
	if err := json.Unmarshal([]byte(strings.TrimPrefix(fields[2], "data: ")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// followConsumers counts the consumers of JOB_EVENTS other than the durable
// ones: the ordered consumers of event streams.
func (f *fixture) followConsumers(t *testing.T) int {
	t.Helper()
	stream, err := f.nats.JS.Stream(f.ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	names := stream.ConsumerNames(f.ctx)
	for name := range names.Name() {
		if name != broker.ConsumerWebhooks && name != broker.ConsumerDependents {
			n++
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEventStreamConsumerGoesWithItsClient: the JetStream consumer behind an
// event stream is deleted when its client leaves, well before the server's
// inactivity clean-up (10s) would remove it.
func TestEventStreamConsumerGoesWithItsClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	ht := httpTransport{base: f.http.URL}
	id := submit(t, ht, "u", "fractions "+markSlow+" consumer")
	base := f.followConsumers(t)
	s := openEvents(t, f.http.URL, id)
	if _, ok := s.next(t); !ok {
		t.Fatal("no first event")
	}
	if n := f.followConsumers(t); n != base+1 {
		t.Fatalf("%d follow consumers with the stream open, want %d", n, base+1)
	}
	s.close()
	f.waitFollowEnded(t, id, 1)
	deadline := time.Now().Add(5 * time.Second)
	for f.followConsumers(t) != base {
		if time.Now().After(deadline) {
			t.Fatalf("the stream's consumer outlived its client by 5s: %d follow consumers, want %d", f.followConsumers(t), base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEventStreamsAreCapped: beyond MaxStreams open streams, job and batch
// event streams are refused with 503, a JSON error and Retry-After; a stream
// that ends frees its place.
func TestEventStreamsAreCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{MaxStreams: 2})
	ht := httpTransport{base: f.http.URL}
	id := submit(t, ht, "u", "fractions "+markSlow+" capped")
	a := openEvents(t, f.http.URL, id)
	openEvents(t, f.http.URL, id)
	for _, path := range []string{"/jobs/" + id + "/events", "/batches/" + uuid.NewString() + "/events"} {
		r := rawRequest(t, f.http.URL, http.MethodGet, path, "")
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			!strings.Contains(r.errMessage(t), "SHEETPIPE_MAX_STREAMS") {
			t.Fatalf("GET %s with 2 streams open: %d, Retry-After %q, %s; want 503 with Retry-After",
				path, r.code, r.header.Get("Retry-After"), r.body)
		}
	}
	a.close()
	f.waitFollowEnded(t, id, 1)
	waitUntil(t, "a stream place freed", func() bool {
		return rawRequest(t, f.http.URL, http.MethodGet, "/jobs/"+uuid.NewString()+"/events", "").code == http.StatusNotFound
	})
	s := openEvents(t, f.http.URL, id)
	if _, ok := s.next(t); !ok {
		t.Fatal("no first event on the stream opened after one ended")
	}
}

// The console's routes check events as the job streams do: GET /events (every
// job's events) forwards no forged one, and a job's history neither shows a
// forged event nor lets one with a revision far ahead hide the real ones after it.
func TestConsoleRoutesDropForgedEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	base := insightServer(t, f)
	ht := httpTransport{base: f.http.URL}
	id := submit(t, ht, "u", "fractions "+markSlow+" console-forged")
	f.waitFor(t, id, 0, "running", func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })
	all := openStream(t, base+"/events")

	_, rev, err := f.store.Get(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	f.forgeCompleted(t, id, rev)      // a state the job was not in at that revision
	f.forgeCompleted(t, id, rev+1000) // a revision the job never had
	f.waitDropped(t, "mismatch", 2)
	decode[any](t, ht.do(t, call{op: events.OpAbort, id: id}))

	for {
		fields, ok := all.frame(t)
		if !ok {
			t.Fatal("GET /events ended before the job's abort")
		}
		var ev events.StatusEvent
		if len(fields) != 2 || fields[0] != "event: status" ||
			json.Unmarshal([]byte(strings.TrimPrefix(fields[1], "data: ")), &ev) != nil {
			t.Fatalf("frame %q", fields)
		}
		if ev.JobID != id {
			continue
		}
		if ev.Status == events.StatusCompleted || ev.PDFURL != "" {
			t.Fatalf("GET /events forwarded a forged event: %+v", ev)
		}
		if ev.Status == events.StatusAborted {
			break
		}
	}

	var hist struct {
		Events []events.StatusEvent `json:"events"`
	}
	if code := getJSON(t, "GET", base+"/jobs/"+id+"/history", "", &hist); code != http.StatusOK || len(hist.Events) == 0 {
		t.Fatalf("history: %d %+v", code, hist)
	}
	for _, ev := range hist.Events {
		if ev.Status == events.StatusCompleted || ev.PDFURL != "" {
			t.Fatalf("history shows a forged event: %s", describe(hist.Events))
		}
	}
	if last := hist.Events[len(hist.Events)-1]; last.Status != events.StatusAborted {
		t.Fatalf("history ends %+v, want the real abort: %s", last, describe(hist.Events))
	}
}
