package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// publishN publishes n requests on subject and returns the error of the first
// refused one (nil when all were stored).
func publishN(ctx context.Context, t *testing.T, js jetstream.JetStream, subject string, n int, size int) error {
	t.Helper()
	for i := range n {
		data := []byte(`{"user_id":"flood","prompt":"` + strings.Repeat("x", size) + `"}`)
		if _, err := js.Publish(ctx, subject, data); err != nil {
			t.Logf("publish %d on %s: %v", i+1, subject, err)
			return err
		}
	}
	return nil
}

// TestJobsStreamBoundRefusesAFlood: with the JOBS stream bounded to 3 messages
// per subject, the 4th request waiting on jobs.prompt is refused to its
// publisher with JetStream's error, while a stage's tickets are still stored:
// prompts waiting never stop the pipeline from handing jobs on. The bound
// reaches a stream provisioned before it existed (an upgrade).
func TestJobsStreamBoundRefusesAFlood(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{JobsMaxMsgsPerSubject: -1}) // as before the bound
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := s.JS.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := old.CachedInfo().Config
	cfg.Discard, cfg.MaxMsgsPerSubject = jetstream.DiscardOld, -1 // the stream as sheetd made it before
	if _, err := s.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := publishN(ctx, t, s.JS, events.SubjectPrompt, 5, 10); err != nil {
		t.Fatalf("unbounded stream refused a publish: %v", err)
	}
	if err := broker.Provision(ctx, s.JS, broker.Resources{JobsMaxMsgsPerSubject: 3}); err != nil {
		t.Fatalf("provision the bound over a stream holding more: %v", err)
	}
	stream, err := s.JS.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	// The server would delete the oldest messages of a subject over a lowered
	// bound: the bound stays at what the stream holds until it drains.
	if c := stream.CachedInfo().Config; c.MaxMsgsPerSubject != 5 || c.Discard != jetstream.DiscardNew || !c.DiscardNewPerSubject {
		t.Fatalf("stream %s after the upgrade: max msgs per subject %d, discard %v, per subject %v; want 5 (what it holds), new, true",
			events.StreamJobs, c.MaxMsgsPerSubject, c.Discard, c.DiscardNewPerSubject)
	}
	if n := stream.CachedInfo().State.Msgs; n != 5 {
		t.Fatalf("the upgrade left %d of the 5 waiting requests, want all", n)
	}
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := broker.Provision(ctx, s.JS, broker.Resources{JobsMaxMsgsPerSubject: 3}); err != nil {
		t.Fatalf("provision again once drained: %v", err)
	}

	err = publishN(ctx, t, s.JS, events.SubjectPrompt, 4, 10)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 ||
		err.Error() != "nats: nats: API error: code=503 err_code=10077 description=maximum messages per subject exceeded" {
		t.Fatalf("4th publish on %s: %v; want JetStream error 10077, maximum messages per subject exceeded", events.SubjectPrompt, err)
	}
	reply, err := s.NC.Request(events.SubjectPrompt, []byte(`{"user_id":"flood","prompt":"x"}`), 5*time.Second)
	if err != nil {
		t.Fatalf("a plain request on a full %s: %v", events.SubjectPrompt, err)
	}
	if !strings.Contains(string(reply.Data), `"err_code":10077`) ||
		!strings.Contains(string(reply.Data), `"description":"maximum messages per subject exceeded"`) {
		t.Fatalf("a plain request on a full %s: reply %s; want JetStream's error 10077", events.SubjectPrompt, reply.Data)
	}
	t.Logf("reply to a plain request: %s", reply.Data)
	design := events.TicketQueue(events.StageDesign, events.PriorityNormal).Subject()
	if err := publishN(ctx, t, s.JS, design, 3, 10); err != nil {
		t.Fatalf("a stage's ticket refused while jobs.prompt is full: %v", err)
	}
}

// TestJobsStreamByteBound: SHEETPIPE_JOBS_STREAM_MAX_BYTES refuses a publish
// that would take the whole stream over it.
func TestJobsStreamByteBound(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{JobsMaxBytes: 64 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := publishN(ctx, t, s.JS, events.SubjectPrompt, 100, 4<<10)
	if err == nil || !strings.Contains(err.Error(), "maximum bytes exceeded") {
		t.Fatalf("100 requests of 4 KiB into 64 KiB: %v; want maximum bytes exceeded", err)
	}
}
