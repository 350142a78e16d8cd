package client_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

const prompt = "a fractions worksheet for grade 5"

func TestSubmitThenWatchCompletes(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)

	id, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if u, err := uuid.Parse(id); err != nil || u.Version() != 4 {
		t.Fatalf("job id %q is not a UUIDv4 (%v)", id, err)
	}
	ch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	checkCompleted(t, id, collect(ctx, t, ch))

	pdf, err := c.PDF(ctx, id)
	if err != nil {
		t.Fatalf("PDF: %v", err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("PDF starts with %q, want %%PDF", pdf[:min(len(pdf), 16)])
	}
}

// The way sheetctl waits: watch first (the job does not exist yet, so the replay
// starts at the end of JOB_EVENTS), then submit. Other jobs' events are skipped.
func TestWatchBeforeSubmit(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)

	other, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: "an addition worksheet"})
	if err != nil {
		t.Fatalf("Submit other: %v", err)
	}
	id := uuid.NewString()
	ch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if _, err := c.Submit(ctx, events.JobRequest{JobID: id, UserID: "ada", Prompt: prompt}); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	checkCompleted(t, id, collect(ctx, t, ch))

	otherCh, err := c.Watch(ctx, other)
	if err != nil {
		t.Fatalf("Watch other: %v", err)
	}
	checkCompleted(t, other, collect(ctx, t, otherCh))
}

func TestWatchAfterCompletionReplays(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)

	id, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	live, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	first := collect(ctx, t, live)

	replay, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("second Watch: %v", err)
	}
	second := collect(ctx, t, replay)
	checkCompleted(t, id, second)
	if describe(first) != describe(second) {
		t.Fatalf("replay differs from live watch:\nlive   %s\nreplay %s", describe(first), describe(second))
	}
}

// An invalid request is refused at once with a 400 error and creates no job.
func TestSubmitRefusesInvalidRequest(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	tooMany := events.MaxRetriesCap + 1
	for name, tc := range map[string]struct {
		req  events.JobRequest
		want string
	}{
		"blank prompt":        {events.JobRequest{UserID: "ada", Prompt: "  \n\t"}, "prompt is required"},
		"missing user":        {events.JobRequest{Prompt: prompt}, "user_id is required"},
		"max retries too big": {events.JobRequest{UserID: "ada", Prompt: prompt, MaxRetries: &tooMany}, "max_retries 11"},
		"unknown mode":        {events.JobRequest{UserID: "ada", Prompt: prompt, Mode: "yolo"}, `mode "yolo"`},
		"job id not a uuid":   {events.JobRequest{JobID: "job-1", UserID: "ada", Prompt: prompt}, `job_id "job-1"`},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			if tc.req.JobID == "" {
				tc.req.JobID = uuid.NewString()
			}
			id, err := c.Submit(ctx, tc.req)
			checkControlError(t, err, events.CodeBadRequest, tc.want)
			if id != "" {
				t.Errorf("Submit returned job id %q with its error", id)
			}
			if _, err := uuid.Parse(tc.req.JobID); err == nil {
				_, err := c.Get(ctx, tc.req.JobID)
				checkControlError(t, err, events.CodeNotFound, tc.req.JobID)
			}
		})
	}
}

// Submitting one job id twice makes one job: one creation event, one history.
func TestSubmitSameJobIDTwice(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)

	want := uuid.NewString()
	req := events.JobRequest{JobID: strings.ToUpper(want), UserID: "ada", Prompt: prompt}
	for i := range 2 {
		id, err := c.Submit(ctx, req)
		if err != nil {
			t.Fatalf("Submit %d: %v", i+1, err)
		}
		if id != want {
			t.Fatalf("Submit %d returned %q, want the normalised %q", i+1, id, want)
		}
	}
	first, err := c.Watch(ctx, want)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	checkCompleted(t, want, collect(ctx, t, first))

	second, err := c.Watch(ctx, want)
	if err != nil {
		t.Fatalf("second Watch: %v", err)
	}
	evs := collect(ctx, t, second)
	created := 0
	for _, ev := range evs {
		if ev.Status == events.StatusPending && ev.Step == events.StepDesign {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d pending@design events, want 1: %s", created, describe(evs))
	}
	if n := storedEvents(ctx, t, s, want); n != len(evs) {
		t.Fatalf("JOB_EVENTS holds %d events of the job, Watch saw %d: events doubled", n, len(evs))
	}
}

// storedEvents counts the events of job id in JOB_EVENTS, duplicates included.
func storedEvents(ctx context.Context, t *testing.T, s *testnats.Server, id string) int {
	t.Helper()
	cons, err := s.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectStatus},
	})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	n := 0
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatalf("fetch events: %v", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if bytes.Contains(msg.Data(), []byte(id)) {
				n++
			}
		}
		if batch.Error() != nil {
			t.Fatalf("fetch events: %v", batch.Error())
		}
		if got == 0 {
			return n
		}
	}
}

func TestWatchEndsWithContext(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	c := newClient(t, s)
	ctx, cancel := context.WithCancel(testContext(t))
	ch, err := c.Watch(ctx, uuid.NewString())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("event %+v for a job that does not exist", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not close its channel within 10s of its context ending")
	}
}

// Watch and PDF refuse a job id no job can have before asking the server.
func TestBadJobIDs(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	c := newClient(t, s)
	ctx := testContext(t)
	for name, id := range map[string]string{
		"not a uuid":    "job-1",
		"almost a uuid": "6ba7b810-9dad-11d1-80b4-00c04fd430c",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Watch(ctx, id); !errors.Is(err, client.ErrInvalidJobID) {
				t.Errorf("Watch: %v, want ErrInvalidJobID", err)
			}
			if _, err := c.WatchFrom(ctx, id, 3); !errors.Is(err, client.ErrInvalidJobID) {
				t.Errorf("WatchFrom: %v, want ErrInvalidJobID", err)
			}
			if _, err := c.PDF(ctx, id); !errors.Is(err, client.ErrInvalidJobID) {
				t.Errorf("PDF: %v, want ErrInvalidJobID", err)
			}
		})
	}
}

func TestPDFOfUnknownJob(t *testing.T) {
	s := testpipeline.Start(t)
	c := newClient(t, s)
	_, err := c.PDF(testContext(t), uuid.NewString())
	if !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("PDF: %v, want ErrNotFound", err)
	}
}

func TestServerWithoutSheetpipe(t *testing.T) {
	s := testnats.Start(t)
	c := newClient(t, s)
	ctx := testContext(t)
	if _, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt}); !errors.Is(err, client.ErrNoService) {
		t.Errorf("Submit: %v, want ErrNoService", err)
	}
	if _, err := c.Watch(ctx, uuid.NewString()); !errors.Is(err, client.ErrNotProvisioned) {
		t.Errorf("Watch: %v, want ErrNotProvisioned", err)
	}
	if _, err := c.WatchAll(ctx); !errors.Is(err, client.ErrNotProvisioned) {
		t.Errorf("WatchAll: %v, want ErrNotProvisioned", err)
	}
	if _, err := c.PDF(ctx, uuid.NewString()); !errors.Is(err, client.ErrNoService) {
		t.Errorf("PDF: %v, want ErrNoService", err)
	}
}

func TestNewNilConn(t *testing.T) {
	if _, err := client.New(nil); !errors.Is(err, client.ErrNoConn) {
		t.Fatalf("New(nil): %v, want ErrNoConn", err)
	}
}
