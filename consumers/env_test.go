package consumers_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/metrics"
)

const goodLatex = `\documentclass{article}
\usepackage{amsmath}
\begin{document}
\section*{Fractions}
\begin{enumerate}
\item $\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\end{enumerate}
\end{document}
`

// brokenLatex has an undefined control sequence on line 5.
const brokenLatex = `\documentclass{article}
\usepackage{amsmath}
\begin{document}
\section*{Fractions}
\notacommand{1/2}
\end{document}
`

// env is one test's whole pipeline: its own JetStream server, scripted LLM server,
// real pdflatex and every stage running.
type env struct {
	t       *testing.T
	ctx     context.Context
	nats    *testnats.Server
	store   *kvstore.Store
	llm     *fakellm.Server
	metrics *metrics.Metrics

	opts   []envOption
	pipe   *consumers.Pipeline
	mu     sync.Mutex
	events map[string][]events.StatusEvent
	reject []events.Rejection
}

type envOption func(*consumers.Config)

func newEnv(t *testing.T, h fakellm.Handler, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, broker.Resources{}, h, opts...)
}

// newEnvWith is newEnv on a server provisioned with res.
func newEnvWith(t *testing.T, res broker.Resources, h fakellm.Handler, opts ...envOption) *env {
	t.Helper()
	e := newIdleEnv(t, res, h, opts...)
	e.pipe = e.startPipeline()
	return e
}

// newIdleEnv is newEnvWith without a pipeline: the test starts its stages.
func newIdleEnv(t *testing.T, res broker.Resources, h fakellm.Handler, opts ...envOption) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, events: map[string][]events.StatusEvent{}}
	e.nats = testnats.Provisioned(t, res)
	e.llm = fakellm.New(t, h)
	e.metrics = metrics.New(prometheus.NewRegistry())
	var err error
	if e.store, err = kvstore.New(ctx, e.nats.JS, e.metrics); err != nil {
		t.Fatal(err)
	}
	e.subscribe()
	e.opts = opts
	return e
}

// startPipeline runs the given stages (every stage when none are named) in a new
// pipeline, as another sheetd process would.
func (e *env) startPipeline(stages ...events.Stage) *consumers.Pipeline {
	e.t.Helper()
	llm, err := ai.New(ai.Config{Provider: "openai", APIKey: "test-key", BaseURL: e.llm.URL, Timeout: 5 * time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	comp, err := latex.New(latex.Config{Timeout: 20 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := consumers.Config{RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	for _, o := range e.opts {
		o(&cfg)
	}
	pipe, err := consumers.New(e.ctx, cfg, consumers.Deps{JS: e.nats.JS, Store: e.store, LLM: llm, Compiler: comp, Metrics: e.metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := pipe.Start(e.ctx, stages...); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pipe.Stop(stopCtx)
	})
	return pipe
}

func (e *env) subscribe() {
	sub, err := e.nats.NC.Subscribe("jobs.>", func(m *nats.Msg) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch m.Subject {
		case events.SubjectStatus:
			var ev events.StatusEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				e.t.Errorf("status event is not JSON: %v: %s", err, m.Data)
				return
			}
			e.events[ev.JobID] = append(e.events[ev.JobID], ev)
		case events.SubjectRejected:
			var r events.Rejection
			if err := json.Unmarshal(m.Data, &r); err != nil {
				e.t.Errorf("rejection is not JSON: %v: %s", err, m.Data)
				return
			}
			e.reject = append(e.reject, r)
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nats.NC.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// publish sends raw bytes on jobs.prompt with an optional message id.
func (e *env) publish(data []byte, msgID string) {
	e.t.Helper()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := e.nats.JS.Publish(e.ctx, events.SubjectPrompt, data, opts...); err != nil {
		e.t.Fatalf("publish request: %v", err)
	}
}

func (e *env) submit(req events.JobRequest) {
	e.t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publish(data, req.JobID)
}

// waitFor waits until the job's latest event satisfies ok and returns all its events.
func (e *env) waitFor(id string, what string, ok func(events.StatusEvent) bool) []events.StatusEvent {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		evs := append([]events.StatusEvent(nil), e.events[id]...)
		e.mu.Unlock()
		if len(evs) > 0 && ok(evs[len(evs)-1]) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t.Fatalf("job %s: no %s within 90s; events: %s", id, what, describe(e.events[id]))
	return nil
}

func (e *env) waitStatus(id string, st events.Status) []events.StatusEvent {
	e.t.Helper()
	return e.waitFor(id, string(st), func(ev events.StatusEvent) bool { return ev.Status == st })
}

func (e *env) eventsOf(id string) []events.StatusEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]events.StatusEvent(nil), e.events[id]...)
}

func (e *env) job(id string) *events.Job {
	e.t.Helper()
	j, _, err := e.store.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get job %s: %v", id, err)
	}
	return j
}

func (e *env) pdf(id string) []byte {
	e.t.Helper()
	obs, err := e.nats.JS.ObjectStore(e.ctx, broker.BucketPDFs)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := obs.GetBytes(e.ctx, id+".pdf")
	if err != nil {
		e.t.Fatalf("get pdf of %s: %v", id, err)
	}
	return b
}

// settle gives the pipeline time to (wrongly) do more work after a final state;
// tests then assert nothing more happened.
func (e *env) settle() { time.Sleep(500 * time.Millisecond) }

func describe(evs []events.StatusEvent) string {
	out := ""
	for _, ev := range evs {
		out += "\n  " + string(ev.Status) + "/" + string(ev.Step) + ": " + ev.Message
	}
	return out
}

// steps answers each LLM step with fixed content.
func steps(design, latexDoc, fix string) fakellm.Handler {
	return fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: design, PromptTokens: 10, CompletionTokens: 20}),
		"latex":  fakellm.Script(fakellm.Reply{Content: latexDoc, PromptTokens: 30, CompletionTokens: 40}),
		"fix":    fakellm.Script(fakellm.Reply{Content: fix}),
		"meta":   metaReplies(testDescription, testTags),
	})
}

// The description and tags steps answers with by default.
const (
	testDescription = "A fractions worksheet for grade 5."
	testTags        = "math, fractions, grade 5"
)

// metaReplies answers the meta step: the description request with desc, the tags
// request with tags.
func metaReplies(desc, tags string) fakellm.Handler {
	return func(req fakellm.Request) fakellm.Reply {
		if isDescription(req) {
			return fakellm.Reply{Content: desc, PromptTokens: 5, CompletionTokens: 7}
		}
		return fakellm.Reply{Content: tags}
	}
}

// isDescription tells package ai's description request from its tags request
// (both are step meta).
func isDescription(req fakellm.Request) bool {
	return strings.HasPrefix(req.LastUser(), "Describe the worksheet")
}

// pipelineCalls returns the LLM requests of the pipeline's own steps, leaving
// out those of the meta stage, which runs beside it.
func (e *env) pipelineCalls() []fakellm.Request {
	var out []fakellm.Request
	for _, c := range e.llm.Calls() {
		if c.Step != "meta" {
			out = append(out, c)
		}
	}
	return out
}

func intp(n int) *int { return &n }
