package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/service"
)

// startService runs sheetd with cfg until the test ends and waits until it is ready.
func startService(t *testing.T, cfg service.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := get(t, "http://"+cfg.HTTPAddr+"/readyz"); code == http.StatusOK {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func request(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// TestControlAPIServed checks that sheetd serves the control API on NATS (the micro
// service, found through $SRV discovery) and on HTTP behind its bearer token, and
// a job submitted over HTTP completes.
func TestControlAPIServed(t *testing.T) {
	cfg := baseConfig(t)
	cfg.APIToken = "s3cret"
	startService(t, cfg)
	base := "http://" + cfg.HTTPAddr

	if code, _ := request(t, "GET", base+"/jobs", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /jobs without token: %d, want 401", code)
	}
	code, body := request(t, "POST", base+"/jobs", "s3cret", `{"user_id":"u","prompt":"fractions"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /jobs: %d %s", code, body)
	}
	var sub events.SubmitReply
	if err := json.Unmarshal([]byte(body), &sub); err != nil || sub.JobID == "" {
		t.Fatalf("submit reply %q: %v", body, err)
	}

	nc, err := nats.Connect("nats://" + cfg.NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request("$SRV.INFO."+events.ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("service discovery: %v", err)
	}
	if !strings.Contains(string(msg.Data), events.ControlSubject(events.OpAbort)) {
		t.Fatalf("service info lacks the abort endpoint: %s", msg.Data)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ref, _ := json.Marshal(events.JobRef{JobID: sub.JobID})
		msg, err := nc.Request(events.ControlSubject(events.OpGet), ref, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var j struct {
			Status events.Status `json:"status"`
		}
		_ = json.Unmarshal(msg.Data, &j)
		if j.Status == events.StatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not completed within 60s: %s", msg.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body = request(t, "GET", base+"/jobs/"+sub.JobID+"/pdf", "s3cret", "")
	if code != http.StatusOK || !strings.HasPrefix(body, "%PDF") {
		t.Fatalf("GET pdf: %d", code)
	}
}

// TestPublicAddressWithoutTokenRefusesJobs: sheetd listening beyond loopback with
// no token serves metrics and health but refuses /jobs.
func TestPublicAddressWithoutTokenRefusesJobs(t *testing.T) {
	cfg := baseConfig(t)
	port := strings.Split(cfg.HTTPAddr, ":")[1]
	cfg.HTTPAddr = "0.0.0.0:" + port
	startService(t, cfg)
	base := "http://127.0.0.1:" + port
	if code, body := request(t, "GET", base+"/jobs", "", ""); code != http.StatusForbidden || !strings.Contains(body, "SHEETPIPE_API_TOKEN") {
		t.Fatalf("GET /jobs: %d %s, want 403 naming SHEETPIPE_API_TOKEN", code, body)
	}
	if code, _ := request(t, "GET", base+"/metrics", "", ""); code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
}
