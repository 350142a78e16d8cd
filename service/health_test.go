package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestReadinessFollowsNATS runs sheetd against an external NATS server and takes
// that server away and back: /readyz reports 503 with the reason while NATS is
// down or a stream is missing, and 200 again once it is back, with no restart of
// sheetd; /healthz (liveness) stays 200 throughout.
func TestReadinessFollowsNATS(t *testing.T) {
	natsAddr, storeDir := testnats.FreeAddr(t), t.TempDir()
	srv := startNATS(t, storeDir, natsAddr)
	cfg := baseConfig(t)
	cfg.NATSURL = "nats://" + natsAddr
	base := "http://" + cfg.HTTPAddr
	stop := runService(t, cfg)
	defer stop() // before the server's cleanup: sheetd stops while NATS is up

	waitStatus(t, base+"/readyz", http.StatusOK, "ready", 60*time.Second)

	srv.Shutdown()
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "nats: not connected", 20*time.Second)
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with NATS down: %d %q, want 200 (liveness only)", code, body)
	}

	srv = startNATS(t, storeDir, natsAddr) // same address and storage: the streams come back
	waitStatus(t, base+"/readyz", http.StatusOK, "ready", 60*time.Second)

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, events.StreamJobs); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "stream JOBS", 20*time.Second)
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with JOBS missing: %d, want 200", code)
	}

	// sheetd does not re-create a deleted stream by itself (a restore from backup
	// needs it absent). The stage consumers went with the stream, so readiness
	// also names a stage that is not consuming, until the stream and its
	// consumers are back (as a restore brings them); then the stages consume
	// again, with no restart: a job submitted now completes.
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "is not consuming", 20*time.Second)
	if err := broker.Provision(ctx, js, broker.Resources{EventsMaxAge: cfg.EventsMaxAge, AckWait: cfg.AckWait}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", http.StatusOK, "ready", 30*time.Second)
	ref, _ := json.Marshal(events.JobRequest{UserID: "u", Prompt: "fractions"})
	reply, err := nc.Request(events.ControlSubject(events.OpSubmit), ref, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sub events.SubmitReply
	if err := json.Unmarshal(reply.Data, &sub); err != nil || sub.JobID == "" {
		t.Fatalf("submit after the restore: %s", reply.Data)
	}
	kv, err := js.KeyValue(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := kv.Get(ctx, sub.JobID)
		if err == nil && strings.Contains(string(e.Value()), `"status":"completed"`) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("job %s did not complete after the stream came back", sub.JobID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startNATS starts a JetStream server on addr storing in dir; the test's cleanup
// stops it if the test has not.
func startNATS(t *testing.T, dir, addr string) *broker.Embedded {
	t.Helper()
	srv, err := broker.StartEmbedded(dir, addr)
	if err != nil {
		t.Fatalf("start nats on %s: %v", addr, err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// runService runs sheetd until stop is called or the test ends; stop checks that
// it stopped cleanly in time.
func runService(t *testing.T, cfg service.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(45 * time.Second):
				t.Errorf("Run did not return within 45s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitStatus polls url until it answers code with a body containing want.
func waitStatus(t *testing.T, url string, code int, want string, within time.Duration) {
	t.Helper()
	var gotCode int
	var gotBody string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		gotCode, gotBody = get(t, url)
		if gotCode == code && strings.Contains(gotBody, want) {
			return
		}
	}
	t.Fatalf("%s: last answer %d %q; want %d with %q within %s", url, gotCode, gotBody, code, want, within)
}
