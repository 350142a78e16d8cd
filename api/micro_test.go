package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// stubControl answers from memory; a Get of a held job id waits until released.
// It serves the tests of the transport's own behaviour (discovery, concurrency,
// limits), which need no pipeline.
type stubControl struct {
	mu      sync.Mutex
	held    map[string]chan struct{}
	waiting int
	submits int
}

func newStub() *stubControl { return &stubControl{held: map[string]chan struct{}{}} }

// hold makes Gets of id wait until the returned release is called.
func (s *stubControl) hold(id string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.held[id] = ch
	s.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (s *stubControl) waitingGets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *stubControl) Submit(_ context.Context, req events.JobRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.submits++
	return uuid.NewString(), nil
}

func (s *stubControl) Get(_ context.Context, id string) (*events.Job, uint64, error) {
	s.mu.Lock()
	ch, ok := s.held[id]
	if ok {
		s.waiting++
	}
	s.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("%w: no job %s", events.ErrNotFound, id)
	}
	<-ch // deliberately deaf to ctx: the request stays in flight until released
	s.mu.Lock()
	s.waiting--
	s.mu.Unlock()
	return &events.Job{ID: id, Status: events.StatusPending}, 1, nil
}

var errStub = errors.New("not in the stub")

func (s *stubControl) EditLatex(context.Context, events.LatexEdit) (*events.Versioned, error) {
	return nil, errStub
}
func (s *stubControl) Retry(context.Context, events.JobChange) (*events.Versioned, error) {
	return nil, errStub
}
func (s *stubControl) Refine(context.Context, events.Refinement) (*events.Versioned, error) {
	return nil, errStub
}
func (s *stubControl) Abort(_ context.Context, c events.JobChange) (*events.Versioned, error) {
	return nil, fmt.Errorf("%w: cannot abort job %s: it is completed", events.ErrConflict, c.JobID)
}
func (s *stubControl) List(context.Context, events.ListQuery) (events.ListReply, error) {
	return events.ListReply{Jobs: []events.JobSummary{}}, nil
}
func (s *stubControl) PDF(context.Context, string) ([]byte, error) { return nil, errStub }
func (s *stubControl) Queue(context.Context, events.QueueQuery) (events.QueueReply, error) {
	return events.QueueReply{}, errStub
}
func (s *stubControl) Follow(context.Context, string) (<-chan events.StatusEvent, error) {
	return nil, errStub
}
func (s *stubControl) SubmitBatch(context.Context, events.BatchRequest) (events.BatchReply, error) {
	return events.BatchReply{}, errStub
}
func (s *stubControl) Batch(context.Context, string) (events.BatchStatus, error) {
	return events.BatchStatus{}, errStub
}
func (s *stubControl) Usage(context.Context, events.UsageQuery) (events.UsageReply, error) {
	return events.UsageReply{}, errStub
}
func (s *stubControl) FollowBatch(context.Context, string) (<-chan events.BatchStatus, error) {
	return nil, errStub
}

// startStub serves a stub over NATS (on a plain test server) and HTTP.
func startStub(t *testing.T, cfg api.Config) (*stubControl, *api.API, natsTransport, httpTransport) {
	t.Helper()
	s := testnats.Start(t)
	stub := newStub()
	a := api.New(stub, cfg, nil)
	if err := a.StartMicro(s.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return stub, a, natsTransport{nc}, httpTransport{base: serveHTTP(t, a).URL}
}

func TestMicroServiceIsDiscoverable(t *testing.T) {
	t.Parallel()
	_, _, nt, _ := startStub(t, api.Config{})
	if r := nt.do(t, call{op: events.OpGet, id: uuid.NewString()}); r.code != http.StatusNotFound {
		t.Fatalf("get of an unknown job: %s", r)
	}

	subject, err := micro.ControlSubject(micro.InfoVerb, events.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	info := decode[micro.Info](t, nt.request(t, subject, nil))
	if info.Name != events.ServiceName || info.Version != events.ServiceVersion || info.Description == "" || info.ID == "" {
		t.Fatalf("service info %+v", info.ServiceIdentity)
	}
	var names []string
	for _, ep := range info.Endpoints {
		op := strings.ReplaceAll(ep.Name, "_", ".") // micro names have no dots
		names = append(names, op)
		if ep.Subject != events.ControlSubject(op) || ep.QueueGroup != micro.DefaultQueueGroup ||
			ep.Metadata["description"] == "" || ep.Metadata["request"] == "" || ep.Metadata["errors"] == "" {
			t.Fatalf("endpoint %+v", ep)
		}
		if op == events.OpSubmit {
			// The schema names every field a request may have.
			rt := reflect.TypeFor[events.JobRequest]()
			for i := range rt.NumField() {
				name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
				if !strings.Contains(ep.Metadata["request"], `"`+name+`"`) {
					t.Errorf("submit's request schema %s omits %q", ep.Metadata["request"], name)
				}
			}
		}
		changes := op == events.OpLatex || op == events.OpRetry || op == events.OpRefine || op == events.OpAbort
		if changes != strings.Contains(ep.Metadata["request"], `"if_revision"?`) || changes != strings.Contains(ep.Metadata["errors"], `"revision"`) {
			t.Fatalf("endpoint %s documents if_revision wrongly: request %s, errors %s", op, ep.Metadata["request"], ep.Metadata["errors"])
		}
	}
	slices.Sort(names)
	want := []string{events.OpAbort, events.OpBatch, events.OpBatchGet, events.OpGet, events.OpImport, events.OpLatex, events.OpList, events.OpQueue, events.OpRefine, events.OpRetry, events.OpSubmit, events.OpUsage}
	if !slices.Equal(names, want) {
		t.Fatalf("endpoints %v, want %v", names, want)
	}

	subject, _ = micro.ControlSubject(micro.StatsVerb, events.ServiceName, "")
	stats := decode[micro.Stats](t, nt.request(t, subject, nil))
	i := slices.IndexFunc(stats.Endpoints, func(ep *micro.EndpointStats) bool { return ep.Name == events.OpGet })
	if i < 0 {
		t.Fatalf("no stats of get: %+v", stats.Endpoints)
	}
	if e := stats.Endpoints[i]; e.NumRequests != 1 || e.NumErrors != 1 || !strings.HasPrefix(e.LastError, "404:") || !strings.Contains(e.LastError, "no job") {
		t.Fatalf("stats of get: %+v", e)
	}
}

// TestMicroRequestsRunConcurrently holds one get and checks others are answered
// meanwhile, up to the in-flight bound; past it, a request waits for a slot
// until its deadline and is then refused as busy.
func TestMicroRequestsRunConcurrently(t *testing.T) {
	t.Parallel()
	stub, a, nt, _ := startStub(t, api.Config{Timeout: time.Second})
	const bound = 64
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		replies []int
	)
	var releases []func()
	for range bound {
		id := uuid.NewString()
		releases = append(releases, stub.hold(id))
		wg.Go(func() {
			msg, err := nt.nc.Request(events.ControlSubject(events.OpGet), mustJSON(t, events.JobRef{JobID: id}), waitLimit)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				replies = append(replies, -1)
				return
			}
			replies = append(replies, len(msg.Header.Get(micro.ErrorCodeHeader)))
		})
	}
	waitUntil(t, "every held get in flight", func() bool { return stub.waitingGets() == bound })

	// Other endpoints are not held up by the full get endpoint.
	if r := nt.do(t, call{op: events.OpList}); r.code != http.StatusOK {
		t.Fatalf("list while gets are held: %s", r)
	}
	// The get endpoint is full: one more waits for its deadline, then is refused.
	if r := nt.do(t, call{op: events.OpGet, id: uuid.NewString()}); r.code != http.StatusServiceUnavailable || !strings.Contains(r.errMessage(t), "in flight") {
		t.Fatalf("get past the bound: %s", r)
	}
	releases[0]()
	waitUntil(t, "a slot is free again", func() bool { return stub.waitingGets() == bound-1 })
	if r := nt.do(t, call{op: events.OpGet, id: uuid.NewString()}); r.code != http.StatusNotFound {
		t.Fatalf("get with a free slot: %s", r)
	}

	// Stop answers what is in flight before it returns.
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop() }()
	for _, release := range releases {
		release()
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Stop did not return")
	}
	wg.Wait()
	if len(replies) != bound || slices.ContainsFunc(replies, func(n int) bool { return n != 0 }) {
		t.Fatalf("held gets' replies (error header lengths, -1 for none): %v", replies)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	waitUntil(t, "no responders after Stop", func() bool {
		_, err := nt.nc.Request(events.ControlSubject(events.OpList), nil, waitLimit)
		return errors.Is(err, nats.ErrNoResponders)
	})
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048
	stub, _, nt, ht := startStub(t, api.Config{MaxBodyBytes: limit})
	big := map[string]any{"user_id": "u", "prompt": strings.Repeat("p", limit)}
	small := map[string]any{"user_id": "u", "prompt": strings.Repeat("p", limit/2)}
	for _, tr := range []transport{nt, ht} {
		t.Run(tr.name(), func(t *testing.T) {
			if r := tr.do(t, call{op: events.OpSubmit, fields: big}); r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.errMessage(t), "2048 bytes") {
				t.Fatalf("submit over the limit: %s", r)
			}
			decode[events.SubmitReply](t, tr.do(t, call{op: events.OpSubmit, fields: small}))
		})
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if stub.submits != 2 {
		t.Fatalf("%d submits reached the pipeline, want the 2 under the limit", stub.submits)
	}
}
