package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/service"
)

func baseConfig(t *testing.T) service.Config {
	return service.Config{
		DataDir: t.TempDir(), NATSListen: testnats.FreeAddr(t), HTTPAddr: testnats.FreeAddr(t), Stages: "all",
		Replicas: 1, MaxRetries: 3, RetryBase: 50 * time.Millisecond, EventsMaxAge: time.Hour,
		AckWait: 30 * time.Second, LeaseTTL: 30 * time.Second, ShutdownTimeout: 10 * time.Second, SweepInterval: 10 * time.Second,
		LogLevel: "warn", LogFormat: "json", LLMModel: "gpt-4o-mini", LLMTimeout: 10 * time.Second,
		CompileTimeout: 30 * time.Second, CompileCommand: "pdflatex",
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunEmbedded runs sheetd as a newcomer would: embedded NATS, offline LLM, real
// pdflatex; a job submitted on NATS completes, the HTTP endpoints answer, and
// cancelling the context shuts it down cleanly.
func TestRunEmbedded(t *testing.T) {
	cfg := baseConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-done
		}
	})

	base := "http://" + cfg.HTTPAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := get(t, base+"/readyz"); code == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %q", code, body)
	}

	nc, err := nats.Connect("nats://" + cfg.NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	req, _ := json.Marshal(events.JobRequest{JobID: id, UserID: "u", Prompt: "A fractions worksheet for grade 5 with 50% & $5 examples"})
	if _, err := js.Publish(ctx, events.SubjectPrompt, req, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	var job events.Job
	for deadline := time.Now().Add(90 * time.Second); ; {
		if e, err := kv.Get(ctx, id); err == nil {
			_ = json.Unmarshal(e.Value(), &job)
			if events.FinishedStatus(job.Status) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not final within 90s: %s %s", job.Status, job.Message)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if job.Status != events.StatusCompleted || job.Provider != "offline" {
		t.Fatalf("job %s (%s) provider %q: %s", job.Status, job.ErrorMessage, job.Provider, job.Message)
	}
	obs, err := js.ObjectStore(ctx, broker.BucketPDFs)
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := obs.GetBytes(ctx, id+".pdf")
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf: %v", err)
	}

	// The conversation starts with the system prompt built from the TeX inventory.
	convs, err := js.KeyValue(ctx, kvstore.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	var conv events.Conversation
	if e, err := convs.Get(ctx, job.ConversationID); err != nil || json.Unmarshal(e.Value(), &conv) != nil || len(conv.Messages) == 0 {
		t.Fatalf("conversation %q: %v", job.ConversationID, err)
	}
	for _, want := range []string{"enumitem", "tikz, pgfplots", "article, exam", "french", "NOT installed; never use them: "} {
		if !strings.Contains(conv.Messages[0].Content, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, conv.Messages[0].Content)
		}
	}

	_, body := get(t, base+"/metrics")
	for _, name := range []string{"jobs_submitted_total", "jobs_finished_total", "stage_duration_seconds",
		"stage_messages_total", "llm_request_duration_seconds", "llm_tokens_total", "compile_duration_seconds",
		"kv_cas_conflicts_total", "retries_total", "jobs_in_flight", "consumer_pending"} {
		if !strings.Contains(body, "sheetpipe_"+name) {
			t.Errorf("/metrics lacks sheetpipe_%s", name)
		}
	}
	if !strings.Contains(body, `sheetpipe_jobs_finished_total{status="completed"} 1`) {
		t.Errorf("/metrics does not count the completed job")
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
}

func TestRunFailsClearly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		modify func(*service.Config)
		want   string
	}{
		{"nats unreachable", func(c *service.Config) { c.NATSURL = "nats://127.0.0.1:1" }, "connect to nats nats://127.0.0.1:1"},
		{"http address taken", func(c *service.Config) { c.HTTPAddr = busy.Addr().String() }, "http listen"},
		{"no compiler", func(c *service.Config) { c.CompileCommand = "no-such-pdflatex" }, "compiler"},
		{"bad config", func(c *service.Config) { c.Replicas = 0 }, "SHEETPIPE_REPLICAS=0"},
		{"bad compile sandbox", func(c *service.Config) { c.CompileSandbox = "docker" }, `COMPILE_SANDBOX="docker": want bwrap or none`},
		{"bad format cache", func(c *service.Config) { c.CompileFormatCache = "lots" }, `COMPILE_FORMAT_CACHE="lots": want off or a size`},
		{"no bwrap", func(c *service.Config) { c.CompileCommand = pathWithout(t, "bwrap") }, "bwrap not found: install bubblewrap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.modify(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := service.Run(ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error mentioning %q", err, tc.want)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run hung until the deadline: %v", err)
			}
		})
	}
}

// pathWithout sets PATH, for the test, to a directory with links to pdflatex
// and kpsewhich and none to missing, and returns pdflatex's path there.
func pathWithout(t *testing.T, missing string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"pdflatex", "kpsewhich"} {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not on PATH", name)
		}
		if err := os.Symlink(real, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, missing)); err == nil {
		t.Fatalf("%s is in %s", missing, dir)
	}
	t.Setenv("PATH", dir)
	return filepath.Join(dir, "pdflatex")
}

// TestReadinessNamesSandboxOff: with COMPILE_SANDBOX=none sheetd starts and
// /readyz says the compile sandbox is off; by default it says bwrap.
func TestReadinessNamesSandbox(t *testing.T) {
	for _, tc := range []struct{ sandbox, want string }{
		{"none", "compile sandbox: OFF (COMPILE_SANDBOX=none)"},
		{"", "compile sandbox: bwrap"},
	} {
		t.Run("sandbox="+tc.sandbox, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.CompileSandbox = tc.sandbox
			stop := runService(t, cfg)
			defer stop()
			waitStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusOK, tc.want, 60*time.Second)
		})
	}
}
