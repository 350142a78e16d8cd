// Package testnats starts a real in-process JetStream server for tests: one per
// test, on a free port, storing in t.TempDir(), shut down by t.Cleanup.
package testnats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
)

// Server is a running test server with a connection.
type Server struct {
	*broker.Embedded
	NC *nats.Conn
	JS jetstream.JetStream
}

// Start starts a server and connects to it. It does not provision resources.
func Start(t testing.TB) *Server {
	t.Helper()
	emb, err := broker.StartEmbedded(t.TempDir(), "127.0.0.1:-1")
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return &Server{Embedded: emb, NC: nc, JS: js}
}

// Provisioned starts a server and declares every sheetpipe resource on it.
func Provisioned(t testing.TB, r broker.Resources) *Server {
	t.Helper()
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broker.Provision(ctx, s.JS, r); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return s
}
