package consumers

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// lostAck is the acknowledgement of a publish to a stream whose leader was
// killed: it never comes and never fails.
type lostAck struct{}

func (lostAck) Ok() <-chan *jetstream.PubAck { return nil }
func (lostAck) Err() <-chan error            { return nil }
func (lostAck) Msg() *nats.Msg               { return nil }

// A worker whose publishes are never acknowledged (the stream lost its leader
// with them) stops waiting, publishes again, and when that fails too returns an
// an error naming the ticket and the status event, so that its message is naked
// and retried (re-emitting the event) instead of heartbeated for ever or acked
// with the event lost.
func TestSettleScopeGivesUpOnLostAcknowledgements(t *testing.T) {
	ns := testnats.Start(t) // no streams: every publish again fails
	p := &Pipeline{js: ns.JS, log: slog.New(slog.DiscardHandler)}
	_, sc := withScope(context.Background())
	sc.addPending(pending{ack: lostAck{}, subject: events.SubjectStatus, data: []byte(`{}`), msgID: "j:7"})
	sc.addPending(pending{ack: lostAck{}, subject: "jobs.compile", data: []byte(`{}`), msgID: "j:compile:3:x", ticket: true})
	done := make(chan error, 1)
	go func() { done <- p.settleScope(context.Background(), sc) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "publish ticket j:compile:3:x") || !strings.Contains(err.Error(), "publish status event j:7") {
			t.Fatalf("settleScope = %v, want the ticket's and the event's publish errors", err)
		}
	case <-time.After(publishAckTimeout + republishTimeout + 10*time.Second):
		t.Fatal("settleScope still waiting for acknowledgements that never come")
	}
}

// idleMsg is a delivered message whose settlement the test ignores.
type idleMsg struct{ jetstream.Msg }

func (idleMsg) InProgress() error { return nil }
func (idleMsg) Ack() error        { return nil }

// A worker stuck waiting on the server (here a settlement that never returns,
// as one without a deadline did) makes the process unready, naming the stage,
// until it is released.
func TestStuckWorkerMakesProcessUnready(t *testing.T) {
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = 100 * time.Millisecond
	release := make(chan struct{})
	r := &runner{stage: events.StageCompile, concurrency: 2, heartbeat: time.Hour, log: slog.New(slog.DiscardHandler),
		handle:      func(context.Context, jetstream.Msg) error { return nil },
		settleScope: func(context.Context, *scope) error { <-release; return nil },
		workCtx:     context.Background()}
	p := &Pipeline{runners: []*runner{r}}
	done := make(chan struct{})
	go func() { r.run(idleMsg{}); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for err := p.Consuming(); err == nil || !strings.Contains(err.Error(), "stage compile: 1 of 2 workers stuck"); err = p.Consuming() {
		if time.Now().After(deadline) {
			t.Fatalf("Consuming() = %v within 10s, want the stuck worker named", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("worker not done 10s after its release")
	}
	if err := p.Consuming(); err != nil {
		t.Fatalf("Consuming() = %v once the worker is done, want nil", err)
	}
}
