package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// llmConcurrency is the design and latex stages' concurrency in the slow-LLM
// run (sheetd's default).
const llmConcurrency = 16

// concurrencyResult is throughput with a slow LLM against the Little's-law
// bound of the LLM stages: concurrency / service time.
type concurrencyResult struct {
	Jobs        int
	Delay       time.Duration
	Concurrency int
	Rate        float64 // completions per second after the first batch
	Bound       float64 // Concurrency / Delay
	E2E         dist
}

func runConcurrency(ctx context.Context, srv *benchServer, sz sizes) (*concurrencyResult, error) {
	design, latex, err := offlineWorksheet(ctx)
	if err != nil {
		return nil, err
	}
	conc := map[events.Stage]int{events.StageDesign: llmConcurrency, events.StageLatex: llmConcurrency}
	h, err := startPipeline(ctx, srv, pipelineSetup{llm: &scriptedLLM{delay: sz.llmDelay, design: design, latex: latex},
		compiler: fixedCompiler{}, concurrency: conc})
	if err != nil {
		return nil, err
	}
	defer h.stop()
	bound := float64(llmConcurrency) / sz.llmDelay.Seconds()
	// Everything at once: the LLM stages' queues never run dry.
	m, err := measure(ctx, srv, load{jobs: sz.slowJobs, prompt: distinctPrompts, window: sz.slowJobs,
		timeout: runTimeout(sz.slowJobs, bound/4)})
	if err != nil {
		return nil, fmt.Errorf("slow-LLM run: %w", err)
	}
	return &concurrencyResult{Jobs: sz.slowJobs, Delay: sz.llmDelay, Concurrency: llmConcurrency,
		Rate: batchRate(doneTimes(m.traces), llmConcurrency), Bound: bound, E2E: endToEnd(m.traces)}, nil
}
