package main

import (
	"fmt"
	"time"
)

// Results are the figures of one run; a scenario not run (or failed) is nil.
type Results struct {
	Machine     machine
	Quick       bool
	Baseline    *baselineResult
	Overhead    *overheadResult
	Concurrency *concurrencyResult
	Compile     *compileResult
	Memory      *memoryResult
	Corpus      *corpusResult
	Format      *formatResult
	RateLimit   *rateLimitResult
	Fairness    *fairnessResult
	Compare     *comparison // the baseline build's overhead figures; nil: no -compare
	// Notes say which scenarios were skipped or failed, and why.
	Notes []string
}

// Goals of the issue, for a 2-core machine.
const (
	goalJobsPerSec   = 1000
	goalBudgetUsed   = 0.50
	goalHopP50       = time.Millisecond
	goalHopP99       = 10 * time.Millisecond
	goalLittleRatio  = 0.90
	goalCompileRatio = 0.85
	goalMsgsPerJob   = 30  // issue 14
	goalVsBaseline   = 1.3 // issue 14: overhead jobs/s ÷ the baseline build's, side by side
)

// target is one goal with what the run measured; Pass is meaningless when
// Measured is empty (not measured).
type target struct {
	Name, Goal, Measured string
	Pass                 bool
}

func (t target) result() string {
	switch {
	case t.Measured == "":
		return "not measured"
	case t.Pass:
		return "PASS"
	}
	return "MISS"
}

// BudgetUsed is the share of the JetStream ops budget (natscli's js pub sync
// rate) the pipeline used at saturation: jobs/s × ops/job ÷ baseline ops/s.
func (r *Results) BudgetUsed() (float64, bool) {
	if r.Overhead == nil || r.Baseline == nil {
		return 0, false
	}
	return r.Overhead.Rate * r.Overhead.PerJob.ops / r.Baseline.PubSync, true
}

func (r *Results) targets() []target {
	ts := []target{
		{Name: "Overhead throughput at saturation", Goal: fmt.Sprintf("≥ %s jobs/s", thousands(goalJobsPerSec))},
		{Name: "JetStream ops budget used at saturation", Goal: "≥ " + percent(goalBudgetUsed)},
		{Name: "Queue hop p50 at half load (each hop)", Goal: "≤ " + ms(goalHopP50)},
		{Name: "Queue hop p99 at half load (each hop)", Goal: "≤ " + ms(goalHopP99)},
		{Name: "Slow-LLM throughput ÷ Little's-law bound", Goal: "≥ " + percent(goalLittleRatio)},
		{Name: "Compile throughput ÷ cores/compile time", Goal: "≥ " + percent(goalCompileRatio)},
		{Name: "Compile throughput with the preamble's format ÷ plain, tikz/pgfplots worksheets", Goal: fmt.Sprintf("≥ %.1f×, same text and pages", goalFormatSpeedup)},
		{Name: "Client messages per job, overhead scenario", Goal: fmt.Sprintf("≤ %d", goalMsgsPerJob)},
		{Name: "Overhead throughput ÷ the baseline build's, side by side", Goal: fmt.Sprintf("≥ %.1f×", goalVsBaseline)},
	}
	if o := r.Overhead; o != nil {
		ts[0].Measured, ts[0].Pass = thousands(o.Rate)+" jobs/s", o.Rate >= goalJobsPerSec
		p50, p50Hop := worstHop(o.Hops, func(d dist) time.Duration { return d.P50 })
		p99, p99Hop := worstHop(o.Hops, func(d dist) time.Duration { return d.P99 })
		ts[2].Measured, ts[2].Pass = "worst "+ms(p50)+" ("+p50Hop+")", p50 <= goalHopP50
		ts[3].Measured, ts[3].Pass = "worst "+ms(p99)+" ("+p99Hop+")", p99 <= goalHopP99
	}
	if o := r.Overhead; o != nil {
		ts[7].Measured, ts[7].Pass = fmt.Sprintf("%.1f", o.PerJob.ops), o.PerJob.ops <= goalMsgsPerJob
		if c := r.Compare; c != nil && c.Skipped == "" {
			ratio := o.Rate / c.Rate
			ts[8].Measured, ts[8].Pass = fmt.Sprintf("%.2f× (%s of %s jobs/s, baseline %s)", ratio, thousands(o.Rate), thousands(c.Rate), c.Ref), ratio >= goalVsBaseline
		}
	}
	if used, ok := r.BudgetUsed(); ok {
		ts[1].Measured, ts[1].Pass = percent(used), used >= goalBudgetUsed
	}
	if c := r.Concurrency; c != nil {
		ratio := c.Rate / c.Bound
		ts[4].Measured, ts[4].Pass = fmt.Sprintf("%s (%.1f of %.1f jobs/s)", percent(ratio), c.Rate, c.Bound), ratio >= goalLittleRatio
	}
	if c := r.Compile; c != nil {
		ratio := c.Rate / c.Bound
		ts[5].Measured, ts[5].Pass = fmt.Sprintf("%s (%.2f of %.2f jobs/s)", percent(ratio), c.Rate, c.Bound), ratio >= goalCompileRatio
	}
	if f := r.Format; f != nil {
		ts[6].Measured, ts[6].Pass = f.target()
	}
	ts = append(ts, r.rateLimitTargets()...)
	return append(ts, r.fairnessTarget())
}

// worstHop is the largest figure over the queue hops (the request hop is the
// prompt stage's work, not a queue hop) and its name.
func worstHop(hs []hop, figure func(dist) time.Duration) (time.Duration, string) {
	var worst time.Duration
	name := ""
	for _, h := range hs[1:] {
		if d := figure(h.Dist); name == "" || d > worst {
			worst, name = d, h.Name
		}
	}
	return worst, name
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func percent(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// thousands formats f rounded to a whole number with thousands separators.
func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
