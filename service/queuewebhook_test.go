package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// TestQueueFullWebhook runs sheetd with SHEETPIPE_MAX_QUEUED_PER_USER=1 and only
// the prompt stage (so a job stays unfinished): a second request of the user on
// jobs.prompt becomes a job in error at step prompt, "queue full: ...", and its
// webhook is posted, signed, with that status.
func TestQueueFullWebhook(t *testing.T) {
	const secret = "hook-secret"
	cfg := baseConfig(t)
	cfg.WebhookSecret, cfg.WebhookAllowNets = secret, "127.0.0.2/32"
	cfg.Stages, cfg.MaxQueued, cfg.MaxQueuedPerUser, cfg.JobsStreamMaxMsgs = "prompt", 100, 1, 1000
	startService(t, cfg)
	_, js := connectJS(t, cfg.NATSListen)
	rcv := newHookReceiver(t, secret)

	publish := func() string {
		id := uuid.NewString()
		req := fmt.Sprintf(`{"job_id":%q,"user_id":"erin","prompt":"fractions","webhook_url":%q}`, id, rcv.URL)
		if _, err := js.Publish(context.Background(), events.SubjectPrompt, []byte(req), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := publish()
	waitJob(t, js, first, func(j events.Job) bool { return j.Status == events.StatusPending })
	refused := publish()
	j := waitJob(t, js, refused, func(j events.Job) bool { return j.Status == events.StatusError })
	if j.CurrentStep != events.StepPrompt || !strings.HasPrefix(j.ErrorMessage, `queue full: user "erin" has 1 unfinished jobs`) {
		t.Fatalf("second job of erin: %s at %s, %q; want error at prompt, queue full", j.Status, j.CurrentStep, j.ErrorMessage)
	}
	rcv.waitPost(t, events.StatusError)
	for _, p := range rcv.received() {
		if !p.signature || p.event.JobID != refused || !strings.HasPrefix(p.event.Message, "Rejected: queue full: ") {
			t.Fatalf("post %+v: want the refused job %s, signed, message \"Rejected: queue full: ...\"", p, refused)
		}
	}
}
