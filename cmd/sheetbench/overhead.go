package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// overheadResult is the pipeline's own cost: an instant LLM and a compiler
// that returns a fixed PDF.
type overheadResult struct {
	Jobs     int     // jobs of the saturation run
	Window   int     // jobs in flight in it
	Rate     float64 // steady completions per second at saturation
	PerJob   perJob  // server counters per job at saturation
	E2E      dist    // enqueue to done at saturation (includes the window's queueing)
	Busy     []busy  // average busy workers of each stage at saturation
	HalfRate float64 // offered rate of the open-loop run: Rate / 2
	HalfJobs int
	Hops     []hop // at half load, from each request's due time
	HalfE2E  dist  // enqueue to done at half load
}

func runOverhead(ctx context.Context, srv *benchServer, sz sizes) (*overheadResult, error) {
	design, latex, err := offlineWorksheet(ctx)
	if err != nil {
		return nil, err
	}
	h, err := startPipeline(ctx, srv, pipelineSetup{llm: &scriptedLLM{design: design, latex: latex}, compiler: fixedCompiler{},
		concurrency: overheadConcurrency})
	if err != nil {
		return nil, err
	}
	defer h.stop()
	before, err := h.busy()
	if err != nil {
		return nil, err
	}
	sat, err := measure(ctx, srv, load{jobs: sz.overheadJobs, prompt: distinctPrompts, window: sz.window,
		timeout: runTimeout(sz.overheadJobs, 20)})
	if err != nil {
		return nil, fmt.Errorf("saturation run: %w", err)
	}
	after, err := h.busy()
	if err != nil {
		return nil, err
	}
	r := &overheadResult{Jobs: sz.overheadJobs, Window: sz.window, Rate: steadyRate(doneTimes(sat.traces)),
		PerJob: sat.perJob, E2E: endToEnd(sat.traces), Busy: busyWorkers(before, after, span(sat.traces))}
	if r.Rate <= 0 {
		return nil, fmt.Errorf("saturation run: no completion rate from %d jobs", r.Jobs)
	}
	r.HalfRate = r.Rate / 2
	r.HalfJobs = max(20, int(r.HalfRate*sz.halfLoadFor.Seconds()))
	half, err := measure(ctx, srv, load{jobs: r.HalfJobs, prompt: distinctPrompts, rate: r.HalfRate,
		timeout: runTimeout(r.HalfJobs, 10)})
	if err != nil {
		return nil, fmt.Errorf("half-load run: %w", err)
	}
	r.Hops, r.HalfE2E = hops(half.traces), endToEnd(half.traces)
	return r, nil
}

// overheadConcurrency is sheetd's default stage concurrency except compile's: its
// default (the CPUs) sizes it for pdflatex, while the benchmark's compiler costs
// no CPU, so compile gets the LLM stages' concurrency, as a deployment would give a
// stage that waits rather than computes.
var overheadConcurrency = map[events.Stage]int{events.StageCompile: 16}

const defaultConcurrency = "prompt 32, design 16, latex 16, compile 16 (sheetd's default is the CPUs, sized for pdflatex)"

// busy is how many of a stage's workers were busy on average: the time its
// handlers took over a run divided by the run's length. A stage whose figure
// reaches its concurrency is the bottleneck.
type busy struct {
	Stage   events.Stage
	Workers float64
}

func busyWorkers(before, after map[string]float64, wall time.Duration) []busy {
	var out []busy
	for _, st := range []events.Stage{events.StagePrompt, events.StageDesign, events.StageLatex, events.StageCompile} {
		out = append(out, busy{Stage: st, Workers: (after[string(st)] - before[string(st)]) / wall.Seconds()})
	}
	return out
}
