package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/llmlimit"
	"github.com/sheetpipe/sheetpipe/maintenance"
)

// Scenario ratelimit: a fake provider allows rateLimitN requests a minute
// (429 with Retry-After beyond, x-ratelimit-* on every answer); two pipelines
// ("two sheetd", each on its own NATS connection, real ai.Client) work through
// more jobs than that allows, once with LLM_RPM = rateLimitN shared on NATS and
// once with LLM_RPM unset.
const (
	rateLimitN         = 120 // the provider's requests per minute
	rateLimitProcesses = 2
	goalRateLimitRatio = 0.90 // achieved calls/min ÷ N
	goalRateLimit429   = 0.02 // share of calls answered 429
)

// rateLimitRun is one of the two runs.
type rateLimitRun struct {
	Name      string
	RPM       int // LLM_RPM; 0 unset
	Calls     int // requests the provider saw during the run
	Limited   int // of them answered 429
	PerMin    float64
	Ratio     float64 // PerMin ÷ N
	Share429  float64
	OpsPerReq float64 // rate-limit KV operations per reserved slot (LLM_RPM set)
	Manual    int     // jobs sent to waiting_manual during the run
}

// rateLimitResult is scenario ratelimit's figures.
type rateLimitResult struct {
	N    int
	For  time.Duration
	Runs []rateLimitRun
}

func runRateLimit(ctx context.Context, srv *benchServer, quick bool) (*rateLimitResult, error) {
	d := time.Minute
	if quick {
		d = 5 * time.Second
	}
	res := &rateLimitResult{N: rateLimitN, For: d}
	for _, rpm := range []int{rateLimitN, 0} {
		run, err := rateLimitOnce(ctx, srv, rpm, d)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// rateLimitOnce runs the pipelines for d from the provider's first request
// and counts what the provider saw.
func rateLimitOnce(ctx context.Context, srv *benchServer, rpm int, d time.Duration) (rateLimitRun, error) {
	design, latex, err := offlineWorksheet(ctx)
	if err != nil {
		return rateLimitRun{}, err
	}
	rl := fakellm.NewRateLimit(rateLimitN, time.Minute)
	rl.Hints = true
	fake := fakellm.Start(rl.Wrap(func(req fakellm.Request) fakellm.Reply {
		switch req.Step {
		case ai.StepDesign:
			return fakellm.Reply{Content: design, PromptTokens: 400, CompletionTokens: 300}
		case ai.StepLatex:
			return fakellm.Reply{Content: latex, PromptTokens: 700, CompletionTokens: 900}
		}
		return fakellm.Reply{Content: "fractions, grade 5", PromptTokens: 900, CompletionTokens: 20}
	}))
	defer fake.Close()
	if err := resetRateLimitRun(ctx, srv); err != nil {
		return rateLimitRun{}, err
	}
	var procs []*rateLimitProcess
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for i := range rateLimitProcesses {
		p, err := startRateLimitProcess(ctx, srv, fake.URL, rpm, i)
		if err != nil {
			return rateLimitRun{}, err
		}
		procs = append(procs, p)
	}
	// Jobs of about 4 calls each: four times what the run can serve, so the
	// queue stays full when jobs fail fast (LLM_RPM unset).
	jobs := rateLimitN * int(d/time.Second) / 60
	s := &submitter{js: procs[0].js, prompt: distinctPrompts}
	for i, id := range newIDs(max(jobs, 20)) {
		if err := s.send(id, i, time.Now()); err != nil {
			return rateLimitRun{}, err
		}
	}
	if err := s.confirmed(ctx); err != nil {
		return rateLimitRun{}, err
	}
	if err := waitFirstCall(ctx, rl); err != nil {
		return rateLimitRun{}, err
	}
	first := rl.Arrivals()[0].At
	select {
	case <-time.After(time.Until(first.Add(d))):
	case <-ctx.Done():
		return rateLimitRun{}, ctx.Err()
	}
	run := rateLimitRun{RPM: rpm, Name: "LLM_RPM unset (provider hints only)"}
	if rpm > 0 {
		run.Name = fmt.Sprintf("LLM_RPM=%d shared by %d processes", rpm, rateLimitProcesses)
	}
	for _, a := range rl.Arrivals() {
		if a.At.Sub(first) >= d {
			break
		}
		run.Calls++
		if a.Limited {
			run.Limited++
		}
	}
	var ops, reserved int64
	for _, p := range procs {
		if p.limiter != nil {
			ops, reserved = ops+p.limiter.Ops(), reserved+p.limiter.Reserved()
		}
	}
	if reserved > 0 {
		run.OpsPerReq = float64(ops) / float64(reserved)
	}
	if run.Calls > 0 {
		run.Share429 = float64(run.Limited) / float64(run.Calls)
	}
	run.PerMin = float64(run.Calls-run.Limited) / d.Minutes()
	run.Ratio = run.PerMin / rateLimitN
	run.Manual, err = countManual(ctx, procs[0].js)
	return run, err
}

func waitFirstCall(ctx context.Context, rl *fakellm.RateLimit) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(rl.Arrivals()) == 0 {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("no LLM call within a minute: %w", ctx.Err())
		}
	}
	return nil
}

// resetRateLimitRun deletes what an earlier run left (the pipeline's streams
// and the rate-limit bucket) and provisions every resource afresh.
func resetRateLimitRun(ctx context.Context, srv *benchServer) error {
	nc, err := srv.connect("sheetbench-ratelimit-reset")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range append(pipelineStreams, "KV_"+llmlimit.Bucket) {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	return broker.Provision(ctx, js, broker.Resources{})
}

// rateLimitProcess is one "sheetd": its own connection, limiter, LLM client
// and stages.
type rateLimitProcess struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	limiter *llmlimit.Limiter // nil: LLM_RPM unset
	plane   *control.Plane
	pipe    *consumers.Pipeline
	loops   *maintenance.Loops
}

func startRateLimitProcess(ctx context.Context, srv *benchServer, url string, rpm, i int) (*rateLimitProcess, error) {
	nc, err := srv.connect(fmt.Sprintf("sheetbench-ratelimit-%d", i))
	if err != nil {
		return nil, err
	}
	p := &rateLimitProcess{nc: nc}
	if p.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	if err := p.start(ctx, url, rpm); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *rateLimitProcess) start(ctx context.Context, url string, rpm int) error {
	cfg := ai.Config{Provider: ai.ProviderOpenAI, BaseURL: url, APIKey: "sheetbench"}
	if rpm > 0 {
		l, err := llmlimit.New(ctx, p.js, llmlimit.Config{RPM: rpm})
		if err != nil {
			return err
		}
		p.limiter, cfg.Limiter = l, l
	}
	llm, err := ai.New(cfg)
	if err != nil {
		return err
	}
	store, err := kvstore.New(ctx, p.js, nil)
	if err != nil {
		return err
	}
	if p.plane, err = control.New(ctx, control.Config{Provider: llm.Provider()}, control.Deps{JS: p.js, Store: store}); err != nil {
		return err
	}
	if p.pipe, err = consumers.New(ctx, consumers.Config{},
		consumers.Deps{JS: p.js, Store: store, LLM: llm, Compiler: fixedCompiler{}, Submit: p.plane}); err != nil {
		return err
	}
	if err := p.pipe.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	p.loops, err = maintenance.Start(context.WithoutCancel(ctx), maintenance.Config{}, maintenance.Deps{JS: p.js, Store: store})
	return err
}

// stop stops the stages (calls still waiting for a slot are handed back) and
// closes the connection.
func (p *rateLimitProcess) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p.pipe != nil {
		p.pipe.Stop(ctx)
	}
	if p.loops != nil {
		p.loops.Stop(ctx)
	}
	if p.plane != nil {
		p.plane.Stop()
	}
	p.nc.Close()
}

// countManual counts the jobs in waiting_manual.
func countManual(ctx context.Context, js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := kvstore.New(ctx, js, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	err = store.EachJob(ctx, func(_ string, j *events.Job, _ uint64, err error) error {
		if err == nil && j.Status == events.StatusWaitingManual {
			n++
		}
		return nil
	})
	return n, err
}

func (r *Results) rateLimitRows(t *table) {
	rl := r.RateLimit
	if rl == nil {
		return
	}
	const s = "ratelimit"
	for _, run := range rl.Runs {
		t.add(s, fmt.Sprintf("%s, provider allows %d/min: calls/min answered ÷ N", run.Name, rl.N),
			fmt.Sprintf("%.0f/min (%.2f)", run.PerMin, run.Ratio))
		t.add(s, run.Name+": calls answered 429", fmt.Sprintf("%d of %d (%s)", run.Limited, run.Calls, percentOne(run.Share429)))
		t.add(s, run.Name+": jobs sent to waiting_manual", fmt.Sprint(run.Manual))
		if run.RPM > 0 {
			t.add(s, run.Name+": rate-limit KV operations per reserved call (reads, writes, retries after a conflict)", fmt.Sprintf("%.2f", run.OpsPerReq))
		}
	}
}

func percentOne(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// rateLimitTargets are issue 17's targets, met by the run with LLM_RPM set.
func (r *Results) rateLimitTargets() []target {
	ts := []target{
		{Name: "LLM calls/min answered ÷ the provider's limit N, LLM_RPM = N", Goal: "≥ " + percent(goalRateLimitRatio)},
		{Name: "LLM calls answered 429, LLM_RPM = N", Goal: "≤ " + percent(goalRateLimit429)},
	}
	if rl := r.RateLimit; rl != nil {
		for _, run := range rl.Runs {
			if run.RPM == 0 {
				continue
			}
			ts[0].Measured, ts[0].Pass = fmt.Sprintf("%s (%.0f of %d/min)", percent(run.Ratio), run.PerMin, rl.N), run.Ratio >= goalRateLimitRatio
			ts[1].Measured, ts[1].Pass = fmt.Sprintf("%s (%d of %d)", percentOne(run.Share429), run.Limited, run.Calls), run.Share429 <= goalRateLimit429
		}
	}
	return ts
}

const rateLimitDoc = `
## A shared LLM rate limit (issue 17)

Scenario *ratelimit* (about two minutes: two runs of one minute) starts a fake
OpenAI-compatible provider that allows 120 requests in each minute (a fixed
window; beyond it a 429 with ` + "`Retry-After`" + ` to the window's end) and sends
` + "`x-ratelimit-{limit,remaining,reset}-requests`" + ` on every answer. Two pipelines
("two sheetd", each with its own NATS connection, its own ` + "`ai.Client`" + ` and the
benchmark-only compiler) work through 120 jobs of about four LLM calls each,
four times what a minute allows. The figures count what the provider saw in
the minute from its first request:

- with ` + "`LLM_RPM=120`" + `, the limit is shared on NATS (docs/ratelimit.md): the
  target is calls answered per minute ÷ N ≥ 90% and at most 2% of calls
  answered 429; the KV operations of the limiter per request are shown (one
  read and one compare-and-swap when uncontended);
- with ` + "`LLM_RPM`" + ` unset, each process obeys only the provider's hints: a 429's
  ` + "`Retry-After`" + ` hands the job back with that delay without costing one of its
  ` + "`max_retries`" + ` (docs/llm.md), so no job is stranded, but every process finds
  the limit by being refused.

Run alone after the provider hints were merged (` + "`-scenarios ratelimit`" + `,
2026-12-07, this 2-core machine, load average 0.9 at start): with
` + "`LLM_RPM=120`" + ` 121 calls answered in the minute (1.01 of N; the minute from the
first call straddles two of the provider's windows and includes the one-second
burst), 1 of 122 answered 429 (0.8%), no job in ` + "`waiting_manual`" + `, 2.28 KV
operations per call; with ` + "`LLM_RPM`" + ` unset 120 calls answered (1.00), 108 of 228
answered 429 (47%), no job in ` + "`waiting_manual`" + `. (Before the hints were obeyed,
the unset run had 81% answered 429 and 92 of the 120 jobs in
` + "`waiting_manual`" + `.) The provider's throughput is the same; the shared limit
removes the 429s.
`
