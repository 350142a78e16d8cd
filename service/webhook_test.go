package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/webhook"
)

// hookReceiver is a webhook endpoint on 127.0.0.2, so that sheetd may be allowed
// to post to it (SHEETPIPE_WEBHOOK_ALLOW_NETS=127.0.0.2/32) while 127.0.0.1 and
// localhost stay refused.
type hookReceiver struct {
	URL   string
	mu    sync.Mutex
	posts []hookPost
}

type hookPost struct {
	event     events.StatusEvent
	key       string
	signature bool
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	r := &hookReceiver{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		p := hookPost{key: req.Header.Get("Idempotency-Key"),
			signature: webhook.Verify(secret, body, req.Header.Get("X-Sheetpipe-Signature"))}
		if err := json.Unmarshal(body, &p.event); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts = append(r.posts, p)
		r.mu.Unlock()
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

func (r *hookReceiver) received() []hookPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookPost(nil), r.posts...)
}

// waitPost waits for a post of status.
func (r *hookReceiver) waitPost(t *testing.T, status events.Status) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		for _, p := range r.received() {
			if p.event.Status == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s webhook within 90s; got %+v", status, r.received())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitWebhooksSettled waits until the webhooks consumer has settled every event
// of JOB_EVENTS.
func waitWebhooksSettled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		s, err := js.Stream(ctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		c, err := js.Consumer(ctx, events.StreamEvents, broker.ConsumerWebhooks)
		if err != nil {
			t.Fatal(err)
		}
		ci := c.CachedInfo()
		if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= s.CachedInfo().State.LastSeq {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("webhooks consumer not settled: %+v", ci)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func connectJS(t *testing.T, addr string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestWebhooks runs sheetd with a webhook secret: a job's final states
// (completed, waiting_manual after a bad manual edit, aborted) are each posted
// once, signed, and nothing else is; URLs of internal addresses are refused on
// every way in.
func TestWebhooks(t *testing.T) {
	const secret = "hook-secret"
	cfg := baseConfig(t)
	cfg.WebhookSecret = secret
	cfg.WebhookAllowNets = "127.0.0.2/32"
	startService(t, cfg)
	base := "http://" + cfg.HTTPAddr
	nc, js := connectJS(t, cfg.NATSListen)
	rcv := newHookReceiver(t, secret)

	t.Run("refused addresses", func(t *testing.T) {
		for host, want := range map[string]string{
			"127.0.0.1": "127.0.0.1 is a loopback address", "localhost": "is a loopback address",
			"[::1]": "::1 is a loopback address", "10.0.0.1": "10.0.0.1 is a private address",
			"169.254.169.254": "169.254.169.254 is a link-local address", "192.168.1.1": "192.168.1.1 is a private address",
		} {
			body := fmt.Sprintf(`{"user_id":"u","prompt":"fractions","webhook_url":"http://%s/hook"}`, host)
			code, reply := request(t, "POST", base+"/jobs", "", body)
			if code != http.StatusBadRequest || !strings.Contains(reply, want) {
				t.Errorf("POST /jobs with webhook host %s: %d %s, want 400 saying %q", host, code, reply, want)
			}
		}
		msg, err := nc.Request(events.ControlSubject(events.OpSubmit),
			[]byte(`{"user_id":"u","prompt":"fractions","webhook_url":"http://169.254.169.254/latest"}`), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "400" || !strings.Contains(string(msg.Data), "link-local") {
			t.Fatalf("sheetpipe.submit: code %q body %s, want 400 naming the link-local address", code, msg.Data)
		}
		id := uuid.NewString()
		req := fmt.Sprintf(`{"job_id":%q,"user_id":"u","prompt":"fractions","webhook_url":"https://10.0.0.1/hook"}`, id)
		if _, err := js.Publish(context.Background(), events.SubjectPrompt, []byte(req), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, js, id, func(j events.Job) bool { return j.Status == events.StatusError })
		if j.CurrentStep != events.StepPrompt || !strings.Contains(j.ErrorMessage, "10.0.0.1 is a private address") {
			t.Fatalf("job from jobs.prompt: %s at %s, %q; want an invalid request naming the address", j.Status, j.CurrentStep, j.ErrorMessage)
		}
	})

	code, reply := request(t, "POST", base+"/jobs", "", fmt.Sprintf(`{"user_id":"u","prompt":"fractions","webhook_url":%q}`, rcv.URL))
	var sub events.SubmitReply
	if code != http.StatusAccepted || json.Unmarshal([]byte(reply), &sub) != nil {
		t.Fatalf("POST /jobs: %d %s", code, reply)
	}
	rcv.waitPost(t, events.StatusCompleted)
	if code, reply := request(t, "POST", base+"/jobs/"+sub.JobID+"/latex", "",
		`{"latex":"\\documentclass{article}\\begin{document}\\notacommand\\end{document}"}`); code != http.StatusOK {
		t.Fatalf("edit LaTeX: %d %s", code, reply)
	}
	rcv.waitPost(t, events.StatusWaitingManual)
	if code, reply := request(t, "POST", base+"/jobs/"+sub.JobID+"/abort", "", ""); code != http.StatusOK {
		t.Fatalf("abort: %d %s", code, reply)
	}
	rcv.waitPost(t, events.StatusAborted)
	waitWebhooksSettled(t, js)

	var statuses []events.Status
	keys := map[string]bool{}
	for _, p := range rcv.received() {
		if !p.signature || p.event.JobID != sub.JobID || p.key != p.event.MsgID() || keys[p.key] {
			t.Fatalf("post %+v: want a valid signature, job %s, key <job_id>:<revision>, each key once", p, sub.JobID)
		}
		keys[p.key] = true
		statuses = append(statuses, p.event.Status)
	}
	if fmt.Sprint(statuses) != "[completed waiting_manual aborted]" {
		t.Fatalf("posted statuses %v, want [completed waiting_manual aborted] and no other event", statuses)
	}
}

// TestWebhooksOffWithoutSecret: without SHEETPIPE_WEBHOOK_SECRET a request with
// webhook_url is refused, saying what to set.
func TestWebhooksOffWithoutSecret(t *testing.T) {
	cfg := baseConfig(t)
	startService(t, cfg)
	_, js := connectJS(t, cfg.NATSListen)
	const want = "webhooks are disabled: set SHEETPIPE_WEBHOOK_SECRET"
	code, reply := request(t, "POST", "http://"+cfg.HTTPAddr+"/jobs", "",
		`{"user_id":"u","prompt":"fractions","webhook_url":"https://hooks.example.com/x"}`)
	if code != http.StatusBadRequest || !strings.Contains(reply, want) {
		t.Fatalf("POST /jobs: %d %s, want 400 saying %q", code, reply, want)
	}
	id := uuid.NewString()
	req := fmt.Sprintf(`{"job_id":%q,"user_id":"u","prompt":"fractions","webhook_url":"https://hooks.example.com/x"}`, id)
	if _, err := js.Publish(context.Background(), events.SubjectPrompt, []byte(req), jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, js, id, func(j events.Job) bool { return j.Status == events.StatusError })
	if !strings.Contains(j.ErrorMessage, want) {
		t.Fatalf("job error %q, want %q", j.ErrorMessage, want)
	}
}

// waitJob waits until job id exists and satisfies ok.
func waitJob(t *testing.T, js jetstream.JetStream, id string, ok func(events.Job) bool) events.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	var j events.Job
	for {
		if e, err := kv.Get(ctx, id); err == nil && json.Unmarshal(e.Value(), &j) == nil && ok(j) {
			return j
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: condition not met within 60s; last %s %q", id, j.Status, j.Message)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
