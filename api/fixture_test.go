package api_test

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// waitLimit bounds every wait of these tests.
const waitLimit = 60 * time.Second

// fixture is one test's whole sheetd minus its main (testpipeline.Fixture): its
// own JetStream server, a scripted LLM behind a proxy that sees cancelled calls,
// real pdflatex, every stage running, and the API over NATS (on its own client
// connection) and HTTP.
type fixture struct {
	fx     *testpipeline.Fixture
	t      *testing.T
	ctx    context.Context
	nats   *testnats.Server
	client *nats.Conn
	store  *kvstore.Store
	llm    *fakellm.Server
	proxy  *llmProxy
	plane  *control.Plane
	ctl    *watchedControl
	api    *api.API
	http   *httptest.Server
	logs   *syncBuffer
	// metrics and pipeLogs are the pipeline's (events_dropped_total{consumer="sse"}).
	metrics  *metrics.Metrics
	pipeLogs *syncBuffer
}

func newFixture(t *testing.T, cfg api.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &syncBuffer{}, pipeLogs: &syncBuffer{}}
	f.fx = testpipeline.New(t, testpipeline.Options{
		LLM:        newScript().handle,
		LLMURL:     func(u string) string { f.proxy = newLLMProxy(t, u); return f.proxy.url },
		LLMTimeout: 2 * waitLimit,
		Log:        slog.New(slog.NewJSONHandler(f.pipeLogs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// A test's forgery, not the pipeline's.
		Ignore:  func(m *nats.Msg) bool { return m.Header.Get(forgedHeader) != "" },
		Timeout: waitLimit,
	})
	f.ctx, f.nats, f.store, f.llm, f.plane, f.metrics = f.fx.Ctx, f.fx.NATS, f.fx.Store, f.fx.LLM, f.fx.Plane, f.fx.Metrics

	f.ctl = &watchedControl{Plane: f.plane, ended: map[string]int{}}
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
	var err error
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

// watchedControl is the control plane, counting the Follows whose channel closed.
type watchedControl struct {
	*control.Plane
	mu    sync.Mutex
	ended map[string]int
}

func (w *watchedControl) Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error) {
	in, err := w.Plane.Follow(ctx, id)
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

func (f *fixture) eventsOf(id string) []events.StatusEvent { return f.fx.Events.Of(id) }

// waitFor waits until one of the job's events after revision since satisfies ok,
// and returns all the job's events.
func (f *fixture) waitFor(t *testing.T, id string, since uint64, what string, ok func(events.StatusEvent) bool) []events.StatusEvent {
	t.Helper()
	f.fx.Events.WaitFor(t, waitLimit, fmt.Sprintf("%s after revision %d of job %s", what, since, id), func(s testpipeline.Seen) bool {
		for _, ev := range s.Of(id) {
			if ev.Revision > since && ok(ev) {
				return true
			}
		}
		return false
	})
	return f.eventsOf(id)
}

// waitStatus waits for an event with status st after revision since.
func (f *fixture) waitStatus(t *testing.T, id string, since uint64, st events.Status) []events.StatusEvent {
	t.Helper()
	return f.waitFor(t, id, since, string(st), func(ev events.StatusEvent) bool { return ev.Status == st })
}

// waitIdle waits until every request and ticket has been handled and every event
// before recorded: after it, nothing more can come of them.
func (f *fixture) waitIdle(t *testing.T) {
	t.Helper()
	f.fx.WaitIdle(t)
}

func describe(evs []events.StatusEvent) string { return testpipeline.Describe(evs) }

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
