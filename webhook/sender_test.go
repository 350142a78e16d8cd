package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
	"github.com/sheetpipe/sheetpipe/webhook"
)

const secret = "test-secret"

// post is one request the receiver got.
type post struct {
	body    []byte
	headers http.Header
}

// receiver is a webhook endpoint on loopback answering with a scripted status
// sequence (the last one repeats).
type receiver struct {
	URL   string
	mu    sync.Mutex
	posts []post
	codes []int
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	r := &receiver{codes: codes}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.posts = append(r.posts, post{body: body, headers: req.Header.Clone()})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code = r.codes[min(len(r.posts), len(r.codes))-1]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/sheetpipe?token=abc"
	return r
}

func (r *receiver) received() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// senderEnv is one test's JetStream server, job store and running Sender.
type senderEnv struct {
	t       *testing.T
	ctx     context.Context
	nats    *testnats.Server
	store   *kvstore.Store
	metrics *metrics.Metrics
	logs    *logBuffer
}

// newSenderEnv provisions a server whose webhooks consumer allows attempts
// deliveries and starts a Sender that may post to loopback when allowLoopback.
func newSenderEnv(t *testing.T, attempts int, allowLoopback bool) *senderEnv {
	t.Helper()
	e := newIdleSenderEnv(t, attempts)
	e.start(allowLoopback)
	return e
}

// newIdleSenderEnv is newSenderEnv without the Sender: events published before
// start wait in the webhooks consumer.
func newIdleSenderEnv(t *testing.T, attempts int) *senderEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &senderEnv{t: t, ctx: ctx, metrics: metrics.New(prometheus.NewRegistry()), logs: &logBuffer{}}
	e.nats = testnats.Provisioned(t, broker.Resources{WebhookAttempts: attempts, AckWait: 5 * time.Second})
	var err error
	if e.store, err = kvstore.New(ctx, e.nats.JS, e.metrics); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs a Sender that may post to loopback when allowLoopback.
func (e *senderEnv) start(allowLoopback bool) {
	t := e.t
	t.Helper()
	var allow []netip.Prefix
	if allowLoopback {
		allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	s, err := webhook.New(webhook.Config{Secret: secret, Guard: webhook.NewGuard(allow), Timeout: 5 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		webhook.Deps{JS: e.nats.JS, Store: e.store, Metrics: e.metrics, Log: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(stopCtx)
	})
}

// job creates a job posting to url (none when empty) and returns its id.
func (e *senderEnv) job(url string) string {
	e.t.Helper()
	j := &events.Job{ID: uuid.NewString(), UserID: "u", Prompt: "fractions", Status: events.StatusPending,
		CurrentStep: events.StepDesign, MaxRetries: 3, WebhookURL: url}
	rev, err := e.store.Create(e.ctx, j)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publish(j.Event(rev))
	return j.ID
}

// transition writes the job's next state and publishes its event, as a stage does;
// it returns the event's bytes.
func (e *senderEnv) transition(id string, status events.Status, step events.Step) []byte {
	e.t.Helper()
	j, rev, err := e.store.Update(e.ctx, id, func(j *events.Job) error {
		j.Status, j.CurrentStep = status, step
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.publish(j.Event(rev))
}

func (e *senderEnv) publish(ev events.StatusEvent) []byte {
	e.t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.nats.JS.Publish(e.ctx, events.SubjectStatus, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
	return data
}

// settled waits until the webhooks consumer has handed out and settled every
// event in the stream.
func (e *senderEnv) settled() {
	e.t.Helper()
	stream, err := e.nats.JS.Stream(e.ctx, events.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := stream.Info(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		c, err := e.nats.JS.Consumer(e.ctx, events.StreamEvents, broker.ConsumerWebhooks)
		if err != nil {
			e.t.Fatal(err)
		}
		ci := c.CachedInfo()
		if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= info.State.LastSeq {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("webhooks consumer not settled within 60s: pending %d, ack pending %d, ack floor %d of %d",
				ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream, info.State.LastSeq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *senderEnv) outcomes(outcome string) int {
	return int(testutil.ToFloat64(e.metrics.WebhookDeliveries.WithLabelValues(outcome)))
}

func TestDeliversFinalEventSigned(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	e.transition(id, events.StatusRunning, events.StepDesign)
	e.transition(id, events.StatusPending, events.StepLatex)
	body := e.transition(id, events.StatusCompleted, events.StepDone)
	e.settled()

	posts := rcv.received()
	if len(posts) != 1 {
		t.Fatalf("receiver got %d posts, want 1 (the final event only)", len(posts))
	}
	p := posts[0]
	if string(p.body) != string(body) {
		t.Fatalf("body %s, want the event built from the job, as published: %s", p.body, body)
	}
	if !webhook.Verify(secret, p.body, p.headers.Get("X-Sheetpipe-Signature")) {
		t.Fatalf("signature %q does not verify", p.headers.Get("X-Sheetpipe-Signature"))
	}
	var ev events.StatusEvent
	if err := json.Unmarshal(p.body, &ev); err != nil || ev.Status != events.StatusCompleted || ev.JobID != id {
		t.Fatalf("event %+v (%v), want job %s completed", ev, err, id)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "sheetpipe-webhook",
		"Idempotency-Key": ev.MsgID()} {
		if got := p.headers.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if e.outcomes("delivered") != 1 {
		t.Fatalf("delivered metric %d, want 1", e.outcomes("delivered"))
	}
}

func TestRetriesServerErrorsWithTheSameKey(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t, 500, 500, 200)
	id := e.job(rcv.URL)
	e.transition(id, events.StatusCompleted, events.StepDone)
	e.settled()

	posts := rcv.received()
	if len(posts) != 3 {
		t.Fatalf("receiver got %d posts, want 3 (two 500s, then delivered)", len(posts))
	}
	key := posts[0].headers.Get("Idempotency-Key")
	for i, p := range posts {
		if k := p.headers.Get("Idempotency-Key"); k != key || k == "" {
			t.Fatalf("attempt %d has key %q, attempt 1 %q", i+1, k, key)
		}
		if !webhook.Verify(secret, p.body, p.headers.Get("X-Sheetpipe-Signature")) {
			t.Fatalf("attempt %d: bad signature", i+1)
		}
	}
	if e.outcomes("retry") != 2 || e.outcomes("delivered") != 1 {
		t.Fatalf("outcomes retry %d delivered %d, want 2 and 1", e.outcomes("retry"), e.outcomes("delivered"))
	}
}

func TestGivesUpAfterTheLastAttempt(t *testing.T) {
	e := newSenderEnv(t, 3, true)
	rcv := newReceiver(t, 503, 429, 408, 200)
	id := e.job(rcv.URL)
	e.transition(id, events.StatusWaitingManual, events.StepCompile)
	e.settled()
	if n := len(rcv.received()); n != 3 {
		t.Fatalf("receiver got %d posts, want the consumer's 3 attempts", n)
	}
	if e.outcomes("retry") != 2 || e.outcomes("failed") != 1 {
		t.Fatalf("outcomes retry %d failed %d, want 2 and 1", e.outcomes("retry"), e.outcomes("failed"))
	}
}

func TestDoesNotRetryOtherAnswers(t *testing.T) {
	for _, code := range []int{400, 401, 404, 410, 302} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			e := newSenderEnv(t, 10, true)
			rcv := newReceiver(t, code, 200)
			id := e.job(rcv.URL)
			e.transition(id, events.StatusAborted, events.StepDesign)
			e.settled()
			if n := len(rcv.received()); n != 1 {
				t.Fatalf("receiver got %d posts after answering %d, want 1", n, code)
			}
			if e.outcomes("rejected") != 1 {
				t.Fatalf("rejected metric %d, want 1", e.outcomes("rejected"))
			}
		})
	}
}

// TestPostsEveryFinalStatusOnly walks a job through a run with a fix, a failure
// and a retry: only completed, waiting_manual and aborted (and an invalid
// request's error) are posted, each with its own key.
func TestPostsEveryFinalStatusOnly(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	steps := []struct {
		status events.Status
		step   events.Step
	}{
		{events.StatusRunning, events.StepDesign}, {events.StatusError, events.StepDesign},
		{events.StatusRunning, events.StepLatex}, {events.StatusWaitingAIFix, events.StepCompile},
		{events.StatusWaitingManual, events.StepCompile}, {events.StatusPending, events.StepCompile},
		{events.StatusCompleted, events.StepDone}, {events.StatusPending, events.StepDesign},
		{events.StatusAborted, events.StepDesign},
	}
	for _, s := range steps {
		e.transition(id, s.status, s.step)
	}
	invalid := e.job(rcv.URL)
	e.transition(invalid, events.StatusError, events.StepPrompt)
	e.settled()

	got := map[string]events.Status{}
	for _, p := range rcv.received() {
		var ev events.StatusEvent
		if err := json.Unmarshal(p.body, &ev); err != nil {
			t.Fatal(err)
		}
		if k := p.headers.Get("Idempotency-Key"); k != ev.MsgID() || got[k] != "" {
			t.Fatalf("key %q for event %s, or posted twice", k, ev.MsgID())
		}
		got[ev.MsgID()] = ev.Status
	}
	want := map[events.Status]int{events.StatusWaitingManual: 1, events.StatusCompleted: 1, events.StatusAborted: 1, events.StatusError: 1}
	count := map[events.Status]int{}
	for _, s := range got {
		count[s]++
	}
	if !maps.Equal(count, want) {
		t.Fatalf("posted %v, want one of each of %v", got, want)
	}
}

// TestReemittedEventKeepsItsKey: an event published again (a redelivered
// ticket re-emits the job's current event, outside the dedupe window) may be
// delivered again, with the same idempotency key.
func TestReemittedEventKeepsItsKey(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	body := e.transition(id, events.StatusCompleted, events.StepDone)
	var ev events.StatusEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	e.publish(ev)
	e.settled()
	posts := rcv.received()
	if len(posts) != 2 || posts[0].headers.Get("Idempotency-Key") != ev.MsgID() ||
		posts[1].headers.Get("Idempotency-Key") != ev.MsgID() {
		t.Fatalf("%d posts, want 2 both keyed %s", len(posts), ev.MsgID())
	}
}

func TestSkipsJobsWithoutWebhook(t *testing.T) {
	e := newSenderEnv(t, 10, true)
	rcv := newReceiver(t)
	plain := e.job("")
	e.transition(plain, events.StatusCompleted, events.StepDone)
	deleted := e.job(rcv.URL)
	j, rev, err := e.store.Get(e.ctx, deleted)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.nats.JS.KeyValue(e.ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(e.ctx, deleted); err != nil {
		t.Fatal(err)
	}
	j.Status, j.CurrentStep = events.StatusCompleted, events.StepDone
	e.publish(j.Event(rev + 1))
	e.settled()
	if n := len(rcv.received()); n != 0 {
		t.Fatalf("receiver got %d posts for a job without webhook and a deleted job", n)
	}
}

// TestRefusedAtDial: a job whose URL points at an address webhooks may not reach
// (it passed the check at submit, or the name resolves elsewhere now) is never
// posted: the dial is refused and the event given up.
func TestRefusedAtDial(t *testing.T) {
	e := newSenderEnv(t, 10, false)
	rcv := newReceiver(t)
	id := e.job(rcv.URL)
	e.transition(id, events.StatusCompleted, events.StepDone)
	e.settled()
	if n := len(rcv.received()); n != 0 {
		t.Fatalf("loopback receiver got %d posts", n)
	}
	if e.outcomes("refused") != 1 || e.outcomes("retry") != 0 {
		t.Fatalf("outcomes refused %d retry %d, want 1 and 0", e.outcomes("refused"), e.outcomes("retry"))
	}
}
