package deploy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/service"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestSheetdWithNATSUsers runs a real sheetd (offline LLM, real pdflatex) logged
// in as user sheetd of deploy/nats/nats-server.conf: it provisions, gets ready,
// and completes a job that user client published on jobs.prompt and followed to
// its PDF, and one submitted through the control API with a webhook, which is
// delivered (acked on JOB_EVENTS); neither user trips a single permission.
func TestSheetdWithNATSUsers(t *testing.T) {
	srv, srvLog := startConfServer(t, "nats/nats-server.conf")
	cfg := sheetdConfig(t)
	cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword = srv.ClientURL(), "sheetd", sheetdPassword
	cfg.WebhookSecret, cfg.WebhookAllowNets = "hook-secret", "127.0.0.0/8"
	runSheetd(t, cfg)
	hooks := make(chan []byte, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- body
	}))
	defer receiver.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cnc, cjs, clientErrs := connectAs(t, srv, "client", clientPassword)
	status, err := cnc.SubscribeSync(events.SubjectStatus)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cnc)
	if err != nil {
		t.Fatal(err)
	}
	id := submitJob(ctx, t, cjs, "A fractions worksheet for grade 5 with 50% & $5 examples")
	watch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("watch as client: %v", err)
	}
	var last events.StatusEvent
	for ev := range watch {
		last = ev
	}
	if last.Status != events.StatusCompleted {
		t.Fatalf("job %s ended %q (%s), want completed", id, last.Status, last.Message)
	}
	pdf, err := c.PDF(ctx, id)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf as client: %v", err)
	}
	if msg, err := status.NextMsg(10 * time.Second); err != nil || !bytes.Contains(msg.Data, []byte(id)) {
		t.Fatalf("live jobs.status as client: %v", err)
	}

	// sheetctl's way: the control API (sheetpipe.submit, sheetpipe.get).
	id2, err := c.Submit(ctx, events.JobRequest{UserID: "teacher", Prompt: "Times tables, grade 3", WebhookURL: receiver.URL})
	if err != nil {
		t.Fatalf("sheetpipe.submit as client: %v", err)
	}
	watch2, err := c.Watch(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	for range watch2 {
	}
	if job, err := c.Get(ctx, id2); err != nil || job.Status != events.StatusCompleted {
		t.Fatalf("sheetpipe.get as client: %+v %v, want completed", job, err)
	}
	select {
	case body := <-hooks:
		if !bytes.Contains(body, []byte(id2)) || !bytes.Contains(body, []byte(`"completed"`)) {
			t.Fatalf("webhook body %s, want job %s completed", body, id2)
		}
	case <-ctx.Done():
		t.Fatal("no webhook for the completed job")
	}
	waitWebhookAcked(ctx, t, cfg)

	if v := srvLog.Violations(); len(v) > 0 {
		t.Fatalf("permission violations: %v", v)
	}
	if errs := clientErrs.all(); len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}

	// A request whose reply subject points at a subject only sheetd may write to
	// ($KV.jobs.<id>, a stage ticket) must not make sheetd write there. The job's
	// description comes without an event: wait for it, the job's last write.
	before, err := c.Get(ctx, id2)
	for err == nil && before.Description == "" && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		before, err = c.Get(ctx, id2)
	}
	if err != nil || before.Description == "" {
		t.Fatalf("job %s without description: %v", id2, err)
	}
	ref := []byte(`{"job_id":"` + id2 + `"}`)
	for _, reply := range []string{"$KV.jobs." + id2, events.SubjectCompile} {
		if err := cnc.PublishRequest(events.ControlSubject(events.OpGet), reply, ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let sheetd answer them (or not)
	after, err := c.Get(ctx, id2)
	if err != nil || after.Revision != before.Revision || after.Status != events.StatusCompleted {
		t.Fatalf("job %s after replies aimed at its key: revision %d -> %d (%v), want unchanged", id2, before.Revision, after.Revision, err)
	}
}

// waitWebhookAcked waits, as user sheetd, until the webhooks consumer has no
// event waiting for an ack: the sender's ack went through.
func waitWebhookAcked(ctx context.Context, t *testing.T, cfg service.Config) {
	t.Helper()
	nc, err := nats.Connect(cfg.NATSURL, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword), nats.CustomInboxPrefix("_INBOX_sheetd"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for {
		c, err := js.Consumer(ctx, events.StreamEvents, broker.ConsumerWebhooks)
		if err == nil && c.CachedInfo().NumAckPending == 0 && c.CachedInfo().NumPending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("webhooks consumer still holds events: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
