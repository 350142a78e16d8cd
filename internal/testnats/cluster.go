package testnats

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is an in-process JetStream cluster of real servers joined by routes.
type Cluster struct {
	Servers []*server.Server
}

// StartCluster starts n JetStream servers in one cluster and waits until it has a
// meta leader and every peer, so replicated assets can be created at once.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	c := &Cluster{}
	for i, p := range ports {
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "sheetpipe-test", Host: "127.0.0.1", Port: p},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatalf("cluster node %d: %v", i+1, err)
		}
		go srv.Start()
		c.Servers = append(c.Servers, srv)
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	for _, srv := range c.Servers {
		if !srv.ReadyForConnections(15 * time.Second) {
			t.Fatalf("cluster node %s not ready", srv.Name())
		}
	}
	c.waitReady(t, n)
	return c
}

// URLs lists every node's client URL, for a connection that fails over.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Connect connects to node i only.
func (c *Cluster) Connect(t testing.TB, i int) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.Servers[i].ClientURL())
	if err != nil {
		t.Fatalf("connect to node %d: %v", i+1, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func (c *Cluster) waitReady(t testing.TB, n int) {
	t.Helper()
	_, js := c.Connect(t, 0)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := js.AccountInfo(ctx)
		cancel()
		if err == nil && info != nil && c.peers() == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("cluster of %d has no meta leader with every peer after 30s", n)
}

// peers is the number of JetStream peers the meta leader knows, or 0.
func (c *Cluster) peers() int {
	for _, s := range c.Servers {
		if s.JetStreamIsLeader() {
			return len(s.JetStreamClusterPeers())
		}
	}
	return 0
}

// FreeAddr returns a loopback "host:port" nothing listens on right now. The
// port is below Linux's ephemeral range (32768 and up), from which the kernel
// picks the source port of every outgoing connection: a port from that range,
// free now, may be some client's by the time a server started later binds it
// (seen: a restarted cluster node's route port). This process hands out each
// port once.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 10000 + rand.IntN(22000)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// handedOut holds the ports FreeAddr returned in this process.
var handedOut sync.Map

func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}
