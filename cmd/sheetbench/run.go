package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// Run measures the selected scenarios against one embedded nats-server, prints
// the results to out and writes cfg.Out when set. A scenario that fails is
// noted and the others still run; the error then names every failure.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sz := cfg.sizes()
	srv, err := startServer()
	if err != nil {
		return nil, err
	}
	defer srv.close()
	r := &Results{Machine: describeMachine(ctx), Quick: cfg.Quick}
	if cfg.Compare != "" {
		r.Compare = loadComparison(cfg.Compare, cfg.CompareRef)
	}
	var errs []error
	for _, name := range cfg.scenarios() {
		fmt.Fprintf(out, "sheetbench: %s...\n", name)
		start := time.Now()
		err := r.run(ctx, name, cfg, srv, sz)
		switch {
		case cfg.Quick && errors.Is(err, errNoNATSCLI):
			r.Notes = append(r.Notes, "baseline skipped (quick run): "+err.Error())
		case err != nil:
			r.Notes = append(r.Notes, name+" failed: "+err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(out, "sheetbench: %s done in %s\n", name, time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
	}
	fmt.Fprintln(out)
	r.writeResults(out)
	if cfg.Out != "" {
		if err := r.writeFile(cfg.Out); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(out, "sheetbench: wrote %s\n", cfg.Out)
		}
	}
	return r, errors.Join(errs...)
}

// run measures one scenario into r.
func (r *Results) run(ctx context.Context, name string, cfg Config, srv *benchServer, sz sizes) error {
	var err error
	switch name {
	case scenarioBaseline:
		r.Baseline, err = runBaseline(ctx, srv, cfg.NATS, sz.baselineMsgs)
	case scenarioOverhead:
		r.Overhead, err = runOverhead(ctx, srv, sz)
	case scenarioConcurrency:
		r.Concurrency, err = runConcurrency(ctx, srv, sz)
	case scenarioCompile:
		r.Compile, err = runCompile(ctx, srv, sz)
	case scenarioMemory:
		r.Memory, err = runMemory(ctx, cfg.Sheetd, sz.memoryJobs)
	case scenarioRateLimit:
		r.RateLimit, err = runRateLimit(ctx, srv, cfg.Quick)
	case scenarioFairness:
		r.Fairness, err = runFairness(ctx, srv, cfg.Quick)
	case scenarioFormat:
		r.Format, err = runFormat(ctx, corpusDir(cfg), sz)
	case scenarioCorpus:
		dir := corpusDir(cfg)
		if r.Corpus, err = runCorpus(ctx, dir, cfg.Quick); err == nil {
			r.Notes = append(r.Notes, r.Corpus.notes()...)
		}
	}
	return err
}

// corpusDir is the worksheet corpus of the corpus and format scenarios.
func corpusDir(cfg Config) string {
	if cfg.Corpus == "" {
		return filepath.Join("latex", "testdata", "corpus")
	}
	return cfg.Corpus
}
