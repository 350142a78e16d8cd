// Package testpipeline is the one pipeline fixture of sheetpipe's tests: a
// provisioned in-process JetStream server (storing in t.TempDir()), the store,
// the scripted fake LLM (internal/fakellm) or the offline one, the real pdflatex,
// every stage (or the ones a test names), and a Recorder of what a watcher of
// jobs.> sees, subscribed before anything runs. Everything stops by t.Cleanup.
//
// Waits are bounded and wait for events, never for time: WaitFor and WaitStatus
// for an event the recorder sees, WaitIdle for the end of all work in the JOBS
// work queue, which is also how a test shows that nothing more happened.
package testpipeline

import (
	"cmp"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/maintenance"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// DefaultTimeout bounds every wait of a Fixture whose Options set none.
const DefaultTimeout = 90 * time.Second

// Options says what differs between the tests that use a Fixture.
type Options struct {
	// Resources provisions the server. Default: broker.Resources{}.
	Resources broker.Resources
	// LLM answers the pipeline's LLM calls, on a fakellm server. Default: nil, the
	// offline LLM of ai.Config{}.
	LLM fakellm.Handler
	// LLMURL maps the fakellm server's base URL to the one the pipeline calls (a
	// test's proxy in front of it). Default: the server's own.
	LLMURL func(string) string
	// LLMTimeout bounds one LLM call. Default: 5 minutes.
	LLMTimeout time.Duration
	// NoCompiler leaves the pipeline without pdflatex. Default: false.
	NoCompiler bool
	// Config changes a process's configuration after the fixture's own
	// (RetryBase 20ms, RetryMax 200ms). Default: nil.
	Config []func(*Setup)
	// Log is the pipeline's logger. Default: nil, the pipeline's own.
	Log *slog.Logger
	// Idle starts no pipeline: the test calls StartPipeline. Default: false.
	Idle bool
	// Ignore leaves out of the record the messages it reports true for (a test's
	// forgeries). Default: nil, every message is recorded.
	Ignore Ignore
	// Timeout bounds every wait, and Context lasts twice as long. Default:
	// DefaultTimeout.
	Timeout time.Duration
}

// Setup is the configuration of one process: its stages', its control plane's
// and its background loops'.
type Setup struct {
	Pipeline    consumers.Config
	Control     control.Config
	Maintenance maintenance.Config
	// LLM changes the fake LLM's client configuration (fallback models, waits,
	// breaker). Default: nil.
	LLM func(*ai.Config)
}

// Process is one sheetd's worth of parts, as StartProcess started them.
type Process struct {
	Pipe  *consumers.Pipeline
	Plane *control.Plane
	Loops *maintenance.Loops
	Setup Setup
}

// Fixture is one test's whole pipeline.
type Fixture struct {
	T       testing.TB
	Ctx     context.Context
	NATS    *testnats.Server
	Store   *kvstore.Store
	LLM     *fakellm.Server // nil with the offline LLM
	Metrics *metrics.Metrics
	// Pipe is the pipeline New started, nil with Options.Idle; Plane and Loops
	// are its process's control plane and background loops.
	Pipe   *consumers.Pipeline
	Plane  *control.Plane
	Loops  *maintenance.Loops
	Events *Recorder

	opts Options
}

// New starts a fixture: server, recorder, store, LLM and, unless o.Idle, every stage.
func New(t testing.TB, o Options) *Fixture {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LLMTimeout == 0 {
		o.LLMTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*o.Timeout)
	t.Cleanup(cancel)
	f := &Fixture{T: t, Ctx: ctx, Metrics: metrics.New(prometheus.NewRegistry()), opts: o}
	f.NATS = testnats.Provisioned(t, o.Resources)
	f.Events = newRecorder(t, f.NATS.NC, o.Ignore, o.Timeout)
	if o.LLM != nil {
		f.LLM = fakellm.New(t, o.LLM)
	}
	var err error
	if f.Store, err = kvstore.New(ctx, f.NATS.JS, f.Metrics); err != nil {
		t.Fatalf("kvstore: %v", err)
	}
	if !o.Idle {
		pr := f.StartProcess()
		f.Pipe, f.Plane, f.Loops = pr.Pipe, pr.Plane, pr.Loops
	}
	return f
}

// StartPipeline runs the given stages (every stage when none are named) in a new
// process on the fixture's server and store (StartProcess) and returns its
// pipeline.
func (f *Fixture) StartPipeline(stages ...events.Stage) *consumers.Pipeline {
	return f.StartProcess(stages...).Pipe
}

// Setup is the configuration a process of the fixture runs with.
func (f *Fixture) Setup() Setup {
	s := Setup{Pipeline: consumers.Config{RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}
	for _, o := range f.opts.Config {
		o(&s)
	}
	s.Maintenance.Sweeper.RetryMax = cmp.Or(s.Maintenance.Sweeper.RetryMax, s.Pipeline.RetryMax)
	s.Maintenance.Sweeper.AckWait = cmp.Or(s.Maintenance.Sweeper.AckWait, s.Pipeline.AckWait)
	return s
}

// Deps are the parts of the fixture's maintenance loops and control plane.
func (f *Fixture) MaintenanceDeps() maintenance.Deps {
	return maintenance.Deps{JS: f.NATS.JS, Store: f.Store, Metrics: f.Metrics, Log: f.opts.Log}
}

// StartProcess runs the given stages (every stage when none are named), a
// control plane and the background loops on the fixture's server and store, as
// another sheetd process would.
func (f *Fixture) StartProcess(stages ...events.Stage) *Process {
	t := f.T
	t.Helper()
	llmCfg := ai.Config{}
	if f.LLM != nil {
		url := f.LLM.URL
		if f.opts.LLMURL != nil {
			url = f.opts.LLMURL(url)
		}
		llmCfg = ai.Config{Provider: "openai", APIKey: "test-key", BaseURL: url, Timeout: f.opts.LLMTimeout}
	}
	setup := f.Setup()
	if f.LLM != nil && setup.LLM != nil {
		setup.LLM(&llmCfg)
	}
	llm, err := ai.New(llmCfg)
	if err != nil {
		t.Fatalf("ai: %v", err)
	}
	setup.Control.Provider = llm.Provider()
	plane, err := control.New(f.Ctx, setup.Control, control.Deps{JS: f.NATS.JS, Store: f.Store, Metrics: f.Metrics, Log: f.opts.Log})
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	t.Cleanup(plane.Stop)
	deps := consumers.Deps{JS: f.NATS.JS, Store: f.Store, LLM: llm, Submit: plane, Metrics: f.Metrics, Log: f.opts.Log,
		LLMHold: llm.Hold}
	if !f.opts.NoCompiler {
		if deps.Compiler, err = latex.New(latex.Config{Timeout: 20 * time.Second}); err != nil {
			t.Fatalf("latex: %v", err)
		}
	}
	pipe, err := consumers.New(f.Ctx, setup.Pipeline, deps)
	if err != nil {
		t.Fatalf("consumers: %v", err)
	}
	// The loops first, as sheetd starts them.
	loops, err := maintenance.Start(f.Ctx, setup.Maintenance, f.MaintenanceDeps())
	if err != nil {
		t.Fatalf("start maintenance: %v", err)
	}
	if err := pipe.Start(f.Ctx, stages...); err != nil {
		loops.Stop(f.Ctx)
		t.Fatalf("start pipeline: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pipe.Stop(ctx)
		loops.Stop(ctx) // after the stages, as sheetd stops them
	})
	if f.LLM != nil {
		// Runs before the pipeline stops: LLM calls still held in a Delay fail at once.
		t.Cleanup(f.LLM.Close)
	}
	return &Process{Pipe: pipe, Plane: plane, Loops: loops, Setup: setup}
}

// WaitStatus waits for job id's latest event to have status st and returns the
// job's events.
func (f *Fixture) WaitStatus(t testing.TB, id string, st events.Status) []events.StatusEvent {
	t.Helper()
	return f.Events.WaitStatus(t, id, st)
}

// Job reads job id from the store.
func (f *Fixture) Job(t testing.TB, id string) *events.Job {
	t.Helper()
	j, _, err := f.Store.Get(f.Ctx, id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return j
}
