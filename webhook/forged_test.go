package webhook_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/webhook"
)

// logBuffer collects a Sender's log lines; safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// publishRaw publishes data on jobs.status under the Nats-Msg-Id msgID, as
// anyone allowed to publish there can.
func (e *senderEnv) publishRaw(data []byte, msgID string) {
	e.t.Helper()
	if _, err := e.nats.JS.Publish(e.ctx, events.SubjectStatus, data, jetstream.WithMsgID(msgID)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *senderEnv) dropped(reason string) int {
	return int(testutil.ToFloat64(e.metrics.EventsDropped.WithLabelValues("webhooks", reason)))
}

// finish writes the job's final state with its PDF and publishes its event
// under its own Nats-Msg-Id, as a stage does; it returns the event.
func (e *senderEnv) finish(id string) events.StatusEvent {
	e.t.Helper()
	j, rev, err := e.store.Update(e.ctx, id, func(j *events.Job) error {
		j.Status, j.CurrentStep, j.PDFURL = events.StatusCompleted, events.StepDone, "/jobs/"+id+"/pdf"
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ev := j.Event(rev)
	data, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publishRaw(data, ev.MsgID())
	return ev
}

// TestForgedFinalEventsAreNotPosted: events claiming a pending job completed
// with an attacker's pdf_url, under Nats-Msg-Ids of the attacker's choosing,
// reach the receiver not at all; malformed events neither. Each is counted and
// logged. The job's real completion afterwards is posted once, with its own
// pdf_url and the idempotency key of its real revision.
func TestForgedFinalEventsAreNotPosted(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	other := e.job("")
	pending, rev, err := e.store.Get(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	_, otherRev, err := e.store.Get(e.ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	const evil = "https://attacker.example/evil.pdf"
	forge := func(jobID string, rev uint64) []byte {
		ev := pending.Event(rev)
		ev.JobID, ev.Status, ev.Step, ev.PDFURL = jobID, events.StatusCompleted, events.StepDone, evil
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, f := range []struct {
		data  []byte
		msgID string
	}{
		{forge(id, rev), id + ":999999"},                   // the job's revision, but it is pending there
		{forge(id, rev+1000), id + ":" + "1000"},           // a revision the job has not reached
		{forge(id, otherRev), id + ":" + uuid.NewString()}, // another job's write
		{forge(uuid.NewString(), rev), uuid.NewString()},   // no such job
		{[]byte(`completed ` + evil), uuid.NewString()},    // not JSON
		{forge("../"+id, rev), uuid.NewString()},           // not a job id
		{forge(id, 0), uuid.NewString()},                   // no revision
	} {
		e.publishRaw(f.data, f.msgID)
	}
	e.settled()
	if posts := rcv.received(); len(posts) != 0 {
		t.Fatalf("receiver got %d posts of forged events; first: %s %s", len(posts), posts[0].headers.Get("Idempotency-Key"), posts[0].body)
	}
	for reason, want := range map[string]int{"mismatch": 3, "unknown_job": 1, "malformed": 3} {
		if got := e.dropped(reason); got != want {
			t.Errorf("events_dropped_total{webhooks,%s} = %d, want %d", reason, got, want)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"status event dropped"`) || !strings.Contains(logs, `"job_id":"`+id+`"`) ||
		!strings.Contains(logs, `"reason":"mismatch"`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("no warning naming the job and the reason:\n%s", logs)
	}

	real := e.finish(id)
	e.settled()
	posts := rcv.received()
	if len(posts) != 1 {
		t.Fatalf("receiver got %d posts after the real completion, want 1", len(posts))
	}
	var got events.StatusEvent
	if err := json.Unmarshal(posts[0].body, &got); err != nil {
		t.Fatal(err)
	}
	if got.PDFURL != real.PDFURL || got.Revision != real.Revision || got.Status != events.StatusCompleted {
		t.Fatalf("posted %+v, want the real completion %+v", got, real)
	}
	if k := posts[0].headers.Get("Idempotency-Key"); k != real.MsgID() {
		t.Fatalf("Idempotency-Key %q, want %q", k, real.MsgID())
	}
	if !webhook.Verify(secret, posts[0].body, posts[0].headers.Get("X-Sheetpipe-Signature")) {
		t.Fatal("the real completion's signature does not verify")
	}
}

// TestPostsTheJobNotTheWire: an event that names a real final state but
// carries other fields (a pdf_url, a message) is posted as the job says.
func TestPostsTheJobNotTheWire(t *testing.T) {
	e := newIdleSenderEnv(t, 10)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	real := e.finish(id)
	doctored := real
	doctored.PDFURL, doctored.Message = "https://attacker.example/evil.pdf", "download here"
	data, err := json.Marshal(doctored)
	if err != nil {
		t.Fatal(err)
	}
	e.publishRaw(data, uuid.NewString())
	e.start(true)
	e.settled()
	for i, p := range rcv.received() {
		var got events.StatusEvent
		if err := json.Unmarshal(p.body, &got); err != nil {
			t.Fatal(err)
		}
		if got.PDFURL != real.PDFURL || got.Message != real.Message || p.headers.Get("Idempotency-Key") != real.MsgID() {
			t.Fatalf("post %d: %+v, want the job's own %+v", i, got, real)
		}
	}
}

// TestEventOfAnEarlierRun: a final event the job has moved past (a retry
// started a new run before the sender got to it) is still posted as it was
// while the jobs bucket keeps that revision, and dropped as superseded once
// the job was written more often than its history keeps.
func TestEventOfAnEarlierRun(t *testing.T) {
	e := newIdleSenderEnv(t, 10)
	rcv := newReceiver(t)
	kept := e.job(rcv.URL)
	keptEv := e.finish(kept)
	e.transition(kept, events.StatusPending, events.StepDesign)
	lost := e.job(rcv.URL)
	e.finish(lost)
	for range kvstore.JobsHistory {
		e.transition(lost, events.StatusRunning, events.StepDesign)
	}
	e.start(true)
	e.settled()
	posts := rcv.received()
	if len(posts) != 1 || posts[0].headers.Get("Idempotency-Key") != keptEv.MsgID() {
		t.Fatalf("%d posts, want one, keyed %s", len(posts), keptEv.MsgID())
	}
	var got events.StatusEvent
	if err := json.Unmarshal(posts[0].body, &got); err != nil || got.Status != events.StatusCompleted || got.PDFURL != keptEv.PDFURL {
		t.Fatalf("posted %+v (%v), want the completion as it was", got, err)
	}
	if e.dropped("superseded") != 1 {
		t.Fatalf("superseded drops %d, want 1", e.dropped("superseded"))
	}
}
