package main

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// benchServer is the one nats-server of a run: JetStream on a temp dir and a TCP
// listener on a free loopback port, shared by natscli, the pipeline and the
// load generator, so every figure is measured against the same server.
type benchServer struct {
	srv  *server.Server
	dir  string
	wire *wireCounter // what the pipeline's and the load's connections send, by kind
}

func startServer() (*benchServer, error) {
	dir, err := os.MkdirTemp("", "sheetbench-nats-")
	if err != nil {
		return nil, fmt.Errorf("nats store dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{ServerName: "sheetbench", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: dir, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("nats server not ready after 15s")
	}
	return &benchServer{srv: srv, dir: dir, wire: newWireCounter()}, nil
}

// URL is the server's nats:// URL over TCP.
func (s *benchServer) URL() string { return s.srv.ClientURL() }

// connect opens a connection named name whose messages the wire counter counts.
func (s *benchServer) connect(name string) (*nats.Conn, error) {
	return nats.Connect(s.URL(), nats.Name(name), s.wire.option())
}

func (s *benchServer) close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	_ = os.RemoveAll(s.dir)
}

// counters is what the server has handled so far. A JetStream operation is one
// message a client sent the server (in_msgs): a publish to a stream or a KV
// bucket, a KV read, a consumer API call, a pull request, an ack or a heartbeat.
// That is also what one `nats bench` operation is, so ops per job compare with
// the baseline's msgs/s.
type counters struct {
	inMsgs int64             // messages received from clients
	api    uint64            // JetStream API requests
	stored uint64            // messages ever stored, summed over every stream's last sequence
	kinds  map[msgKind]int64 // messages the counted connections sent, by kind
}

func (s *benchServer) counters() (counters, error) {
	v, err := s.srv.Varz(nil)
	if err != nil {
		return counters{}, fmt.Errorf("varz: %w", err)
	}
	jsz, err := s.srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return counters{}, fmt.Errorf("jsz: %w", err)
	}
	c := counters{inMsgs: v.InMsgs, api: jsz.API.Total, kinds: s.wire.snapshot()}
	for _, acc := range jsz.AccountDetails {
		for _, st := range acc.Streams {
			c.stored += st.State.LastSeq
		}
	}
	return c, nil
}

// since is what was handled between before and c, per job.
func (c counters) since(before counters, jobs int) perJob {
	n := float64(jobs)
	return perJob{
		ops:    float64(c.inMsgs-before.inMsgs) / n,
		api:    float64(c.api-before.api) / n,
		stored: float64(c.stored-before.stored) / n,
		kinds:  kindsSince(before.kinds, c.kinds, n),
	}
}

// perJob are the server's counters divided by the jobs of a run.
type perJob struct {
	ops, api, stored float64
	kinds            []kindCount // the counted messages by kind, most first
}
