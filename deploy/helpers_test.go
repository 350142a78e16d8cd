package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/service"
)

// Passwords the tests give the NATS configuration through its environment.
const (
	sheetdPassword = "sheetd-test-password"
	clientPassword = "client-test-password"
)

// serverLog keeps the permission violations a nats-server reports.
type serverLog struct {
	mu         sync.Mutex
	violations []string
}

func (l *serverLog) Errorf(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); strings.Contains(msg, "Violation") {
		l.mu.Lock()
		l.violations = append(l.violations, msg)
		l.mu.Unlock()
	}
}
func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Warnf(string, ...any)   {}
func (l *serverLog) Fatalf(string, ...any)  {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}

func (l *serverLog) Violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.violations...)
}

// startConfServer runs a nats-server from conf (a file under deploy/nats) with the
// test passwords in its environment, on free loopback ports (client and
// monitoring) and storing in a temporary directory.
func startConfServer(t *testing.T, conf string) (*server.Server, *serverLog) {
	t.Helper()
	t.Setenv("SHEETD_PASSWORD", sheetdPassword)
	t.Setenv("CLIENT_PASSWORD", clientPassword)
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("load %s: %v", conf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.StoreDir, opts.NoSigs = t.TempDir(), true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("server from %s: %v", conf, err)
	}
	log := &serverLog{}
	srv.SetLogger(log, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		t.Fatalf("server from %s not ready within 15s", conf)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv, log
}

// asyncErrs collects the asynchronous errors of a connection (permission
// violations arrive this way).
type asyncErrs struct {
	mu   sync.Mutex
	errs []error
}

func (a *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

// all returns the errors so far.
func (a *asyncErrs) all() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}

// waitFor waits until an error mentioning text has arrived, and returns it.
func (a *asyncErrs) waitFor(t *testing.T, text string) error {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		a.mu.Lock()
		for _, err := range a.errs {
			if strings.Contains(err.Error(), text) {
				a.mu.Unlock()
				return err
			}
		}
		a.mu.Unlock()
	}
	t.Fatalf("no asynchronous error mentioning %q within 10s (got %v)", text, a.all())
	return nil
}

// connectAs logs in to srv as user.
func connectAs(t *testing.T, srv *server.Server, user, password string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, *asyncErrs) {
	t.Helper()
	errs := &asyncErrs{}
	opts = append([]nats.Option{nats.UserInfo(user, password), nats.ErrorHandler(errs.handler)}, opts...)
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, errs
}

// sheetdConfig is a sheetd that uses the offline LLM and real pdflatex, with a
// free HTTP address and an embedded NATS server on a free port.
func sheetdConfig(t *testing.T) service.Config {
	return service.Config{
		DataDir: t.TempDir(), NATSListen: testnats.FreeAddr(t), HTTPAddr: testnats.FreeAddr(t), Stages: "all",
		Replicas: 1, MaxRetries: 3, RetryBase: 50 * time.Millisecond, EventsMaxAge: time.Hour,
		AckWait: 30 * time.Second, LeaseTTL: 30 * time.Second, ShutdownTimeout: 10 * time.Second, SweepInterval: 10 * time.Second,
		LogLevel: "warn", LogFormat: "json", LLMProvider: "offline", LLMModel: "gpt-4o-mini", LLMTimeout: 10 * time.Second,
		CompileTimeout: 30 * time.Second, CompileCommand: "pdflatex",
	}
}

// runSheetd runs sheetd until the test ends and waits until /readyz answers 200.
func runSheetd(t *testing.T, cfg service.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sheetd: %v", err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("sheetd did not stop within 45s")
		}
	})
	url := "http://" + cfg.HTTPAddr + "/readyz"
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := httpGet(url)
		if code == http.StatusOK {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("sheetd stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sheetd not ready within 60s: %d %s", code, body)
		}
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// submitJob publishes a job request on jobs.prompt and returns its id once the
// JOBS stream acknowledged it.
func submitJob(ctx context.Context, t *testing.T, js jetstream.JetStream, prompt string) string {
	t.Helper()
	id := uuid.NewString()
	req, _ := json.Marshal(events.JobRequest{JobID: id, UserID: "deploy-test", Prompt: prompt})
	ack, err := js.Publish(ctx, events.SubjectPrompt, req, jetstream.WithMsgID(id), jetstream.WithExpectStream(events.StreamJobs))
	if err != nil {
		t.Fatalf("publish job request: %v", err)
	}
	if ack.Stream != events.StreamJobs || ack.Duplicate {
		t.Fatalf("job request ack %+v, want a new message in %s", ack, events.StreamJobs)
	}
	return id
}

// waitCompleted polls the jobs bucket until job id is final, and fails unless it
// completed.
func waitCompleted(ctx context.Context, t *testing.T, js jetstream.JetStream, id string) {
	t.Helper()
	kv, err := js.KeyValue(ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	var job events.Job
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		e, err := kv.Get(ctx, id)
		if err != nil {
			continue
		}
		job = events.Job{}
		_ = json.Unmarshal(e.Value(), &job)
		if events.FinishedStatus(job.Status) {
			if job.Status != events.StatusCompleted {
				t.Fatalf("job %s ended %s: %s %s", id, job.Status, job.ErrorMessage, job.Message)
			}
			return
		}
	}
	t.Fatalf("job %s not final within 90s (status %s)", id, job.Status)
}
