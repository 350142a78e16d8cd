package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// natsCluster is a JetStream cluster of standalone nats-server processes on
// fixed ports and store directories, so that one node can be killed with
// SIGKILL, as a host crash would, and started again where it was.
type natsCluster struct {
	t     *testing.T
	nodes []*clusterNode
}

// clusterNode is one nats-server of a natsCluster.
type clusterNode struct {
	name    string
	port    int // clients
	monitor int // HTTP monitoring (/jsz names the meta leader)
	conf    string
	proc    *process
}

// startNATSCluster starts n nats-server processes joined by routes and waits
// until the meta group has a leader and every peer is current.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	port := func() int {
		_, p, _ := net.SplitHostPort(testnats.FreeAddr(t))
		v, _ := strconv.Atoi(p)
		return v
	}
	routePorts := make([]int, n)
	routes := make([]string, n)
	for i := range routePorts {
		routePorts[i] = port()
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])
	}
	c := &natsCluster{t: t}
	dir := t.TempDir()
	for i := range n {
		nd := &clusterNode{name: fmt.Sprintf("n%d", i+1), port: port(), monitor: port()}
		nd.conf = filepath.Join(dir, nd.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: sheetpipe-test
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, nd.name, nd.port, nd.monitor, filepath.Join(dir, nd.name), routePorts[i], strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		c.startNode(nd)
	}
	c.waitMeta(n, time.Minute)
	return c
}

// URLs lists every node's client URL, for a connection that fails over.
func (c *natsCluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", nd.port)
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) startNode(nd *clusterNode) {
	c.t.Helper()
	nd.proc = startCommand(c.t, "nats-server "+nd.name, natsServerBinary(c.t), nil, "-c", nd.conf)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", nd.port), nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return
		}
		if code, ok := nd.proc.exited(); ok {
			c.t.Fatalf("nats-server %s exited %d\n%s", nd.name, code, nd.proc.stderr.String())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s not accepting connections within 30s: %v", nd.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// meta reads the meta group as node nd sees it.
func (nd *clusterNode) meta() (*server.MetaClusterInfo, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", nd.monitor))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	if info.Meta == nil {
		return nil, fmt.Errorf("%s: no meta group", nd.name)
	}
	return info.Meta, nil
}

// waitMeta waits until every live node names the same meta leader, which sees
// want peers, all current.
func (c *natsCluster) waitMeta(want int, d time.Duration) *clusterNode {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if leader := c.metaLeader(want); leader != nil {
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no meta leader with %d current peers within %s", want, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *natsCluster) metaLeader(want int) *clusterNode {
	var leader string
	for _, nd := range c.nodes {
		if _, exited := nd.proc.exited(); exited {
			continue
		}
		m, err := nd.meta()
		if err != nil || m.Leader == "" || (leader != "" && m.Leader != leader) {
			return nil
		}
		leader = m.Leader
	}
	for _, nd := range c.nodes {
		if nd.name != leader {
			continue
		}
		m, err := nd.meta()
		if err != nil || m.Leader != nd.name {
			return nil
		}
		current := 1
		for _, r := range m.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current < want {
			return nil
		}
		return nd
	}
	return nil
}

// kill stops node nd with SIGKILL and waits until the process is gone.
func (c *natsCluster) kill(nd *clusterNode) {
	c.t.Helper()
	if err := syscall.Kill(nd.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill nats-server %s: %v", nd.name, err)
	}
	nd.proc.wait(10 * time.Second)
}
