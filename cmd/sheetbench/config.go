package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scenario names, in the order a run measures them.
const (
	scenarioBaseline    = "baseline"
	scenarioOverhead    = "overhead"
	scenarioConcurrency = "concurrency"
	scenarioCompile     = "compile"
	scenarioMemory      = "memory"
	scenarioCorpus      = "corpus"
	scenarioFormat      = "format"
	scenarioRateLimit   = "ratelimit"
	scenarioFairness    = "fairness"
)

var allScenarios = []string{scenarioBaseline, scenarioOverhead, scenarioConcurrency, scenarioCompile, scenarioMemory, scenarioCorpus, scenarioFormat, scenarioRateLimit, scenarioFairness}

// Config is one run's settings.
type Config struct {
	// Quick makes every scenario small (a smoke run of a few seconds) and lets the
	// baseline be skipped when natscli is missing. Default false.
	Quick bool
	// Scenarios is the comma list of scenarios to run. Default all.
	Scenarios string
	// Jobs is the number of jobs of the overhead saturation run. Default 5000
	// (quick: 100).
	Jobs int
	// Out is the Markdown report to write; empty writes none. Default empty.
	Out string
	// NATS is the natscli binary (`make bench` builds it into bin/nats). Default bin/nats.
	NATS string
	// Sheetd is the sheetd binary the memory scenario starts. Default bin/sheetd.
	Sheetd string
	// Corpus is the worksheet corpus the corpus scenario compiles (good/ and
	// broken/ inside). Default latex/testdata/corpus.
	Corpus string
	// Compare is the report of a baseline build's overhead run (make bench: the
	// sheetbench of BENCH_BASELINE), set beside this run's; a file whose first
	// line is "skipped: <reason>" notes why there is none. Default empty: no
	// comparison.
	Compare string
	// CompareRef names the baseline build in the report. Default "baseline".
	CompareRef string
}

// RegisterFlags binds cfg's fields to flags of fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: small sizes; skips the baseline when natscli is missing")
	fs.StringVar(&c.Scenarios, "scenarios", "all", "comma list of scenarios: "+strings.Join(allScenarios, ",")+" (or all)")
	fs.IntVar(&c.Jobs, "jobs", 0, "jobs of the overhead saturation run (default 5000, quick 100)")
	fs.StringVar(&c.Out, "out", "", "write the Markdown report here (make bench: BENCHMARKS.md)")
	fs.StringVar(&c.NATS, "nats", "bin/nats", "natscli binary for the baseline")
	fs.StringVar(&c.Sheetd, "sheetd", "bin/sheetd", "sheetd binary for the memory scenario")
	fs.StringVar(&c.Compare, "compare", "", "report of a baseline build's overhead run to set beside this run's (make bench writes it)")
	fs.StringVar(&c.CompareRef, "compare-ref", "baseline", "name of the baseline build in the report (its git ref)")
	fs.StringVar(&c.Corpus, "corpus", "latex/testdata/corpus", "worksheet corpus for the corpus scenario")
}

// sizes are how much work each scenario does.
type sizes struct {
	baselineMsgs   int           // messages of each natscli run
	overheadJobs   int           // jobs of the saturation run
	window         int           // jobs in flight at once in the saturation run
	halfLoadFor    time.Duration // length of the open-loop run at half load
	slowJobs       int           // jobs of the 200 ms LLM run
	llmDelay       time.Duration // the slow LLM's answer time
	compileRuns    int           // serial compiles timed (after one warm-up)
	compileJobsPer int           // jobs per core of each pipeline compile run (at least 2)
	memoryJobs     int           // jobs queued in sheetd
}

func (c Config) sizes() sizes {
	if c.Quick {
		return sizes{baselineMsgs: 2000, overheadJobs: c.jobsOr(100), window: 64, halfLoadFor: time.Second,
			slowJobs: 48, llmDelay: 200 * time.Millisecond, compileRuns: 1, compileJobsPer: 2, memoryJobs: 200}
	}
	return sizes{baselineMsgs: 50000, overheadJobs: c.jobsOr(5000), window: 512, halfLoadFor: 10 * time.Second,
		slowJobs: 960, llmDelay: 200 * time.Millisecond, compileRuns: 5, compileJobsPer: 8, memoryJobs: 10000}
}

func (c Config) jobsOr(def int) int {
	if c.Jobs > 0 {
		return c.Jobs
	}
	return def
}

// scenarios lists the selected scenarios in run order.
func (c Config) scenarios() []string {
	if c.Scenarios == "" || c.Scenarios == "all" {
		return allScenarios
	}
	var picked []string
	for _, s := range allScenarios {
		if slices.Contains(strings.Split(c.Scenarios, ","), s) {
			picked = append(picked, s)
		}
	}
	return picked
}

func (c Config) validate() error {
	var errs []error
	if c.Scenarios != "" && c.Scenarios != "all" {
		for _, s := range strings.Split(c.Scenarios, ",") {
			if !slices.Contains(allScenarios, s) {
				errs = append(errs, fmt.Errorf("unknown scenario %q (want %s or all)", s, strings.Join(allScenarios, ",")))
			}
		}
	}
	if c.Jobs < 0 || (c.Jobs > 0 && c.Jobs < 20) {
		errs = append(errs, fmt.Errorf("-jobs %d: need at least 20 jobs for percentiles", c.Jobs))
	}
	return errors.Join(errs...)
}
