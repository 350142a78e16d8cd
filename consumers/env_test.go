package consumers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/maintenance"
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

// env is one test's whole pipeline (testpipeline.Fixture): its own JetStream
// server, scripted LLM server, real pdflatex and every stage running, with the
// names these tests use.
type env struct {
	fx      *testpipeline.Fixture
	t       *testing.T
	ctx     context.Context
	nats    *testnats.Server
	store   *kvstore.Store
	llm     *fakellm.Server
	metrics *metrics.Metrics
	pipe    *consumers.Pipeline
	// plane is the control plane of the first process started.
	plane *control.Plane
}

type envOption = func(*testpipeline.Setup)

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
	fx := testpipeline.New(t, testpipeline.Options{Resources: res, LLM: h, Config: opts, Idle: true})
	return &env{fx: fx, t: t, ctx: fx.Ctx, nats: fx.NATS, store: fx.Store, llm: fx.LLM, metrics: fx.Metrics}
}

// startPipeline runs the given stages (every stage when none are named) in a new
// pipeline, as another sheetd process would.
func (e *env) startPipeline(stages ...events.Stage) *consumers.Pipeline {
	e.t.Helper()
	pr := e.fx.StartProcess(stages...)
	if e.plane == nil {
		e.plane = pr.Plane
	}
	return pr.Pipe
}

// newPlane is a control plane of its own, as a process running no stage has.
func (e *env) newPlane() *control.Plane {
	e.t.Helper()
	p, err := control.New(e.ctx, e.fx.Setup().Control, control.Deps{JS: e.nats.JS, Store: e.store, Metrics: e.metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Stop)
	return p
}

// janitor is a janitor run by hand, with the env's retention.
func (e *env) janitor() *maintenance.Janitor {
	e.t.Helper()
	jn, err := maintenance.NewJanitor(e.ctx, e.fx.Setup().Maintenance.Janitor, e.fx.MaintenanceDeps())
	if err != nil {
		e.t.Fatal(err)
	}
	return jn
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
	return e.fx.Events.WaitLatest(e.t, id, what, ok)
}

func (e *env) waitStatus(id string, st events.Status) []events.StatusEvent {
	e.t.Helper()
	return e.fx.Events.WaitStatus(e.t, id, st)
}

func (e *env) eventsOf(id string) []events.StatusEvent { return e.fx.Events.Of(id) }

// rejections returns the rejections seen on jobs.rejected.
func (e *env) rejections() []events.Rejection { return e.fx.Events.Rejections() }

// jobsWithEvents lists the jobs that had an event, in the order of their first.
func (e *env) jobsWithEvents() []string { return e.fx.Events.Jobs() }

// waitIdle waits until every request and ticket has been handled and the
// recorder has seen every event before: after it, nothing more can come of them.
func (e *env) waitIdle() {
	e.t.Helper()
	e.fx.WaitIdle(e.t)
}

func (e *env) job(id string) *events.Job {
	e.t.Helper()
	return e.fx.Job(e.t, id)
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

func describe(evs []events.StatusEvent) string { return testpipeline.Describe(evs) }

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
