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
	t.Parallel()
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
