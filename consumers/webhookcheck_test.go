package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// TestWebhookURLIsChecked: Config.CheckWebhook vets webhook_url on both ways in,
// a refusal being a 400 on submit and an invalid-request job on jobs.prompt; a
// pipeline without it refuses every webhook.
func TestWebhookURLIsChecked(t *testing.T) {
	t.Parallel()
	refuse := func(_ context.Context, url string) error {
		if strings.Contains(url, "internal") {
			return fmt.Errorf("%w: webhook_url host %q is internal", events.ErrInvalid, "internal.example")
		}
		return nil
	}
	e := newEnv(t, steps("design", goodLatex, ""), func(c *testpipeline.Setup) { c.Control.CheckWebhook = refuse })

	id, err := e.plane.Submit(e.ctx, events.JobRequest{UserID: "u1", Prompt: "fractions", WebhookURL: "https://hooks.example.com/x"})
	if err != nil {
		t.Fatalf("submit with an accepted webhook: %v", err)
	}
	if j := e.job(id); j.WebhookURL != "https://hooks.example.com/x" {
		t.Fatalf("job webhook_url %q", j.WebhookURL)
	}
	refused := uuid.NewString()
	_, err = e.plane.Submit(e.ctx, events.JobRequest{JobID: refused, UserID: "u1", Prompt: "fractions", WebhookURL: "https://internal.example/x"})
	if events.CodeOf(err) != 400 || !strings.Contains(err.Error(), "is internal") {
		t.Fatalf("submit with a refused webhook: %v, want a 400 with the check's reason", err)
	}
	if _, _, err := e.plane.Get(e.ctx, refused); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("refused submit stored a job: %v", err)
	}

	viaPrompt := uuid.NewString()
	e.submit(events.JobRequest{JobID: viaPrompt, UserID: "u1", Prompt: "fractions", WebhookURL: "https://internal.example/x"})
	ev := e.waitStatus(viaPrompt, events.StatusError)
	if last := ev[len(ev)-1]; last.Step != events.StepPrompt || !strings.Contains(e.job(viaPrompt).ErrorMessage, "is internal") {
		t.Fatalf("request on jobs.prompt: %s at %s, %q; want an invalid request with the check's reason",
			last.Status, last.Step, e.job(viaPrompt).ErrorMessage)
	}

	off := newEnv(t, steps("design", goodLatex, ""))
	_, err = off.plane.Submit(off.ctx, events.JobRequest{UserID: "u1", Prompt: "fractions", WebhookURL: "https://hooks.example.com/x"})
	if events.CodeOf(err) != 400 || !strings.Contains(err.Error(), "webhooks are disabled") {
		t.Fatalf("submit with webhooks off: %v, want a 400 saying they are disabled", err)
	}
}
