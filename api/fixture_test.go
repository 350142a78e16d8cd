package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// waitLimit bounds every wait of these tests.
const waitLimit = 60 * time.Second

// fixture is one test's whole sheetd minus its main: its own JetStream server, a
// scripted LLM behind a proxy that sees cancelled calls, real pdflatex, every
// stage running, and the API over NATS (on its own client connection) and HTTP.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	nats   *testnats.Server
	client *nats.Conn
	store  *kvstore.Store
	llm    *fakellm.Server
	proxy  *llmProxy
	pipe   *consumers.Pipeline
	ctl    *watchedControl
	api    *api.API
	http   *httptest.Server
	logs   *syncBuffer
	// metrics and pipeLogs are the pipeline's (events_dropped_total{consumer="sse"}).
	metrics  *metrics.Metrics
	pipeLogs *syncBuffer

	mu     sync.Mutex
	events map[string][]events.StatusEvent
}

func newFixture(t *testing.T, cfg api.Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, events: map[string][]events.StatusEvent{}, logs: &syncBuffer{},
		metrics: metrics.New(prometheus.NewRegistry()), pipeLogs: &syncBuffer{}}
	f.nats = testnats.Provisioned(t, broker.Resources{})
	f.subscribe()
	f.llm = fakellm.New(t, newScript().handle)
	f.proxy = newLLMProxy(t, f.llm.URL)
	var err error
	if f.store, err = kvstore.New(ctx, f.nats.JS, nil); err != nil {
		t.Fatal(err)
	}
	llm, err := ai.New(ai.Config{Provider: "openai", APIKey: "test-key", BaseURL: f.proxy.url, Timeout: 2 * waitLimit})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := latex.New(latex.Config{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.pipe, err = consumers.New(ctx, consumers.Config{RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond},
		consumers.Deps{JS: f.nats.JS, Store: f.store, LLM: llm, Compiler: comp, Metrics: f.metrics,
			Log: slog.New(slog.NewJSONHandler(f.pipeLogs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pipe.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.pipe.Stop(stopCtx)
	})
	// Runs before the pipeline stops: LLM calls still held in a Delay fail at once.
	t.Cleanup(f.llm.Close)

	f.ctl = &watchedControl{Pipeline: f.pipe, ended: map[string]int{}}
	f.api = api.New(f.ctl, cfg, slog.New(slog.NewJSONHandler(f.logs, nil)))
	if err := f.api.StartMicro(f.nats.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.api.Stop(); err != nil {
			t.Errorf("stop api: %v", err)
		}
	})
	f.http = serveHTTP(t, f.api)
	if f.client, err = nats.Connect(f.nats.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.client.Close)
	return f
}

// serveHTTP serves a's routes on a test server.
func serveHTTP(t *testing.T, a *api.API) *httptest.Server {
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// watchedControl is the pipeline, counting the Follows whose channel closed.
type watchedControl struct {
	*consumers.Pipeline
	mu    sync.Mutex
	ended map[string]int
}

func (w *watchedControl) Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
	in, err := w.Pipeline.Follow(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(chan events.StatusEvent)
	go func() {
		defer func() {
			w.mu.Lock()
			w.ended[id]++
			w.mu.Unlock()
		}()
		defer close(out)
		for ev := range in {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// waitFollowEnded waits until n Follows of job id have ended.
func (f *fixture) waitFollowEnded(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		f.ctl.mu.Lock()
		got := f.ctl.ended[id]
		f.ctl.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s: the Follow of its event stream did not end within %s", id, waitLimit)
}

// subscribe records every status event, as a watcher of jobs.status sees them.
func (f *fixture) subscribe() {
	sub, err := f.nats.NC.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		if m.Header.Get(forgedHeader) != "" {
			return // a test's forgery, not the pipeline's
		}
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			f.t.Errorf("status event is not JSON: %v: %s", err, m.Data)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.events[ev.JobID] = append(f.events[ev.JobID], ev)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := f.nats.NC.Flush(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) eventsOf(id string) []events.StatusEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.StatusEvent(nil), f.events[id]...)
}

// waitFor waits until one of the job's events after revision since satisfies ok,
// and returns all the job's events.
func (f *fixture) waitFor(t *testing.T, id string, since uint64, what string, ok func(events.StatusEvent) bool) []events.StatusEvent {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		evs := f.eventsOf(id)
		for _, ev := range evs {
			if ev.Revision > since && ok(ev) {
				return evs
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s: no %s within %s; events:%s", id, what, waitLimit, describe(f.eventsOf(id)))
	return nil
}

// waitStatus waits for an event with status st after revision since.
func (f *fixture) waitStatus(t *testing.T, id string, since uint64, st events.Status) []events.StatusEvent {
	t.Helper()
	return f.waitFor(t, id, since, string(st), func(ev events.StatusEvent) bool { return ev.Status == st })
}

// settle gives the pipeline time to (wrongly) do more work; tests then assert
// nothing more happened.
func settle() { time.Sleep(500 * time.Millisecond) }

func describe(evs []events.StatusEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + string(ev.Status) + "/" + string(ev.Step) + ": " + ev.Message)
	}
	return b.String()
}

// llmProxy forwards to the fake LLM and records the body of every call whose
// client went away before the answer.
type llmProxy struct {
	url       string
	mu        sync.Mutex
	cancelled []string
}

func newLLMProxy(t *testing.T, target string) *llmProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &llmProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
		if r.Context().Err() != nil {
			p.mu.Lock()
			p.cancelled = append(p.cancelled, string(body))
			p.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL + u.Path
	return p
}

// cancelledWith reports whether a cancelled call's body contained s.
func (p *llmProxy) cancelledWith(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.cancelled {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
