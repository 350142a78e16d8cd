package main

import (
	"fmt"
	"io"
	"strings"
)

// table is a Markdown table.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	line := func(cells []string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	fmt.Fprintln(w)
}

// writeResults writes the machine, every measured figure and the targets: what
// sheetbench prints, and the generated part of BENCHMARKS.md.
func (r *Results) writeResults(w io.Writer) {
	mode := "full run"
	if r.Quick {
		mode = "quick smoke run (small sizes: not comparable with a full run)"
	}
	fmt.Fprintf(w, "Measured %s UTC, %s.\n\n", r.Machine.Date.Format("2006-01-02 15:04"), mode)
	m := &table{head: []string{"Machine", ""}}
	m.add("CPUs (nproc)", fmt.Sprint(r.Machine.CPUs))
	m.add("CPU", r.Machine.CPUModel)
	m.add("Go", r.Machine.Go)
	m.add("nats-server (embedded in sheetbench)", r.Machine.NATSServer)
	if r.Baseline != nil {
		m.add("natscli", r.Baseline.Version)
	}
	m.add("pdflatex", r.Machine.PDFLatex)
	m.add("load average at start", r.Machine.LoadAvg)
	m.write(w)

	res := &table{head: []string{"Scenario", "Figure", "Value"}}
	r.baselineRows(res)
	r.overheadRows(res)
	r.concurrencyRows(res)
	r.compileRows(res)
	r.memoryRows(res)
	r.corpusRows(res)
	r.formatRows(res)
	r.rateLimitRows(res)
	r.fairnessRows(res)
	res.write(w)
	r.writeComparison(w)
	r.writeBreakdown(w)

	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}

	tg := &table{head: []string{"Target (2-core machine)", "Goal", "Measured", "Result"}}
	for _, t := range r.targets() {
		tg.add(t.Name, t.Goal, t.Measured, t.result())
	}
	tg.write(w)
}

func (r *Results) baselineRows(t *table) {
	b := r.Baseline
	if b == nil {
		return
	}
	t.add("baseline", fmt.Sprintf("`nats bench js pub sync`, %d clients, %s msgs", baselineClients, thousands(float64(b.Msgs))),
		thousands(b.PubSync)+" ops/s (the budget)")
	t.add("baseline", fmt.Sprintf("`nats bench kv put`, %d clients, %s msgs", baselineClients, thousands(float64(b.Msgs))),
		thousands(b.KVPut)+" ops/s")
}

func (r *Results) overheadRows(t *table) {
	o := r.Overhead
	if o == nil {
		return
	}
	const s = "overhead"
	t.add(s, fmt.Sprintf("jobs/s at saturation (%s jobs, %d in flight; instant LLM, benchmark-only fixed-PDF compiler)",
		thousands(float64(o.Jobs)), o.Window), thousands(o.Rate))
	t.add(s, "JetStream ops per job (client messages to the server)", fmt.Sprintf("%.1f", o.PerJob.ops))
	t.add(s, "of which JetStream API requests / stored messages per job", fmt.Sprintf("%.1f / %.1f", o.PerJob.api, o.PerJob.stored))
	if used, ok := r.BudgetUsed(); ok {
		t.add(s, "ops used ÷ available (jobs/s × ops/job ÷ baseline js pub sync)", percent(used))
	}
	t.add(s, "enqueue → done p50 / p99 at saturation", ms(o.E2E.P50)+" / "+ms(o.E2E.P99))
	var names, workers []string
	for _, b := range o.Busy {
		names = append(names, string(b.Stage))
		workers = append(workers, fmt.Sprintf("%.2f", b.Workers))
	}
	t.add(s, fmt.Sprintf("average busy workers at saturation, %s (concurrency: %s)", strings.Join(names, " / "), defaultConcurrency),
		strings.Join(workers, " / "))
	t.add(s, fmt.Sprintf("open loop at half load: %.0f jobs/s offered, %s jobs", o.HalfRate, thousands(float64(o.HalfJobs))),
		"latency from each request's due time")
	for _, h := range o.Hops {
		t.add(s, "half load: "+h.Name+" p50 / p99", ms(h.Dist.P50)+" / "+ms(h.Dist.P99))
	}
	t.add(s, "half load: enqueue → done p50 / p99", ms(o.HalfE2E.P50)+" / "+ms(o.HalfE2E.P99))
}

func (r *Results) concurrencyRows(t *table) {
	c := r.Concurrency
	if c == nil {
		return
	}
	const s = "concurrency"
	t.add(s, fmt.Sprintf("jobs/s with a %s LLM (%s jobs; design and latex concurrency %d)", c.Delay, thousands(float64(c.Jobs)), c.Concurrency),
		fmt.Sprintf("%.1f", c.Rate))
	t.add(s, "Little's-law bound: concurrency ÷ LLM time", fmt.Sprintf("%.1f jobs/s", c.Bound))
	t.add(s, "achieved ÷ bound", percent(c.Rate/c.Bound))
	t.add(s, "enqueue → done p50 / p99 (all jobs sent at once)", ms(c.E2E.P50)+" / "+ms(c.E2E.P99))
}

func (r *Results) compileRows(t *table) {
	c := r.Compile
	if c == nil {
		return
	}
	const s = "compile"
	t.add(s, "one pdflatex compile of the typical worksheet (fastest of the serial runs)", ms(c.Single))
	t.add(s, fmt.Sprintf("bound: %d cores ÷ compile time", c.Cores), fmt.Sprintf("%.2f jobs/s", c.Bound))
	t.add(s, fmt.Sprintf("jobs/s through the pipeline, compile concurrency %d, %d jobs, distinct LaTeX", c.Cores, c.Jobs),
		fmt.Sprintf("%.2f (%s of bound)", c.Rate, percent(c.Rate/c.Bound)))
	t.add(s, fmt.Sprintf("jobs/s, %d jobs with identical LaTeX (a content-hash PDF cache shows here)", c.Jobs),
		fmt.Sprintf("%.2f (%.2f× distinct)", c.RepeatRate, c.RepeatRate/c.Rate))
	t.add(s, "enqueue → done p50 / p99, distinct LaTeX", ms(c.E2E.P50)+" / "+ms(c.E2E.P99))
}

func (r *Results) memoryRows(t *table) {
	m := r.Memory
	if m == nil {
		return
	}
	const s = "memory"
	t.add(s, "sheetd RSS idle (embedded NATS, stages: prompt)", mib(m.IdleKiB))
	t.add(s, fmt.Sprintf("sheetd RSS with %s jobs queued at design (peak)", thousands(float64(m.Jobs))),
		fmt.Sprintf("%s (%s)", mib(m.QueuedKiB), mib(m.PeakKiB)))
	t.add(s, "time to submit and create them", ms(m.SubmitTaken))
}
