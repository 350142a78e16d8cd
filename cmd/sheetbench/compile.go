package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/latex"
)

// compileResult is real pdflatex through the pipeline against the bound cores /
// single-compile time, with compile concurrency = cores.
type compileResult struct {
	Cores      int
	Single     time.Duration // fastest of the serial compiles
	Bound      float64       // Cores / Single
	Jobs       int           // jobs of each pipeline run
	Rate       float64       // jobs/s, every job's LaTeX different
	RepeatRate float64       // jobs/s, every job's LaTeX identical
	E2E        dist          // enqueue to done, distinct LaTeX
}

func runCompile(ctx context.Context, srv *benchServer, sz sizes) (*compileResult, error) {
	comp, err := latex.New(latex.Config{})
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	design, src, err := offlineWorksheet(ctx)
	if err != nil {
		return nil, err
	}
	single, err := serialCompile(ctx, comp, src, sz.compileRuns)
	if err != nil {
		return nil, err
	}
	cores := runtime.NumCPU()
	r := &compileResult{Cores: cores, Single: single, Bound: float64(cores) / single.Seconds(),
		Jobs: sz.compileJobsPer * cores}
	h, err := startPipeline(ctx, srv, pipelineSetup{llm: &scriptedLLM{design: design, latex: src}, compiler: comp,
		concurrency: map[events.Stage]int{events.StageCompile: cores}})
	if err != nil {
		return nil, err
	}
	defer h.stop()
	minRate := r.Bound / 10
	m, err := measure(ctx, srv, load{jobs: r.Jobs, prompt: distinctPrompts, window: r.Jobs, timeout: runTimeout(r.Jobs, minRate)})
	if err != nil {
		return nil, fmt.Errorf("compile run: %w", err)
	}
	r.Rate, r.E2E = batchRate(doneTimes(m.traces), cores), endToEnd(m.traces)
	same := func(int) string { return typicalPrompt + " (repeated)" }
	m, err = measure(ctx, srv, load{jobs: r.Jobs, prompt: same, window: r.Jobs, timeout: runTimeout(r.Jobs, minRate)})
	if err != nil {
		return nil, fmt.Errorf("repeated-LaTeX run: %w", err)
	}
	r.RepeatRate = batchRate(doneTimes(m.traces), cores)
	return r, nil
}

// serialCompile compiles src once to warm pdflatex's caches, then runs times
// more, one after another, and returns the fastest: the compile's own cost,
// least disturbed by other work on the machine (so the bound is not low).
func serialCompile(ctx context.Context, comp *latex.Compiler, src string, runs int) (time.Duration, error) {
	var ds []time.Duration
	for i := range runs + 1 {
		start := time.Now()
		if _, err := comp.Compile(ctx, src); err != nil {
			return 0, fmt.Errorf("compile the typical worksheet: %w", err)
		}
		if i > 0 {
			ds = append(ds, time.Since(start))
		}
	}
	return slices.Min(ds), nil
}
