package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

var (
	natsBuildOnce sync.Once
	natsBin       string
	natsBuildErr  error
)

// natsServerBinary builds the pinned nats-server (the module sheetd embeds) once
// per test binary, without the race detector: a heavy run is not slowed by an
// instrumented server, and the server can be killed and restarted like a real one.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	sheetdBinary(t) // shares its temporary directory
	natsBuildOnce.Do(func() {
		natsBin = filepath.Join(buildDir, "nats-server")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBuildErr = fmt.Errorf("go build nats-server: %w\n%s", err, out)
		}
	})
	if natsBuildErr != nil {
		t.Fatal(natsBuildErr)
	}
	return natsBin
}

// natsServer is a standalone JetStream server process on a fixed port and store
// directory, so a restart finds its streams, consumers and buckets again.
type natsServer struct {
	t     *testing.T
	port  int
	store string
	proc  *process
}

func startNATSServer(t *testing.T) *natsServer {
	t.Helper()
	_, port, _ := net.SplitHostPort(testnats.FreeAddr(t))
	p, _ := strconv.Atoi(port)
	s := &natsServer{t: t, port: p, store: t.TempDir()}
	s.start()
	return s
}

func (s *natsServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// start runs the server and waits until it accepts connections and answers
// JetStream requests.
func (s *natsServer) start() {
	s.t.Helper()
	s.proc = startCommand(s.t, "nats-server", natsServerBinary(s.t), nil,
		"-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.store)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second))
		if err == nil {
			_, err = nc.Request("$JS.API.INFO", nil, 2*time.Second)
			nc.Close()
			if err == nil {
				return
			}
		}
		if code, ok := s.proc.exited(); ok {
			s.t.Fatalf("nats-server exited %d\n%s", code, s.proc.stderr.String())
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server on port %d not ready within 30s: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL, as a crashed host would.
func (s *natsServer) kill() {
	s.t.Helper()
	if err := syscall.Kill(s.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill nats-server: %v", err)
	}
	s.proc.wait(10 * time.Second)
}
