package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// comparison is the overhead scenario of a baseline build (`make bench` builds
// the sheetbench of BENCH_BASELINE and runs its overhead scenario just before
// this run) beside this run's.
type comparison struct {
	Ref     string  // the baseline's git ref
	Rate    float64 // its overhead jobs/s at saturation
	PerJob  float64 // its client messages per job
	LoadAvg string  // the load average at its start
	Skipped string  // why there is no baseline figure; empty when there is
}

// loadComparison reads the baseline's report: the Markdown a baseline sheetbench
// wrote with -out, or a file whose first line is "skipped: <reason>" (the
// Makefile writes one when it cannot build or run the baseline).
func loadComparison(path, ref string) *comparison {
	c := &comparison{Ref: ref}
	data, err := os.ReadFile(path)
	if err != nil {
		c.Skipped = "no baseline report: " + err.Error()
		return c
	}
	if reason, ok := strings.CutPrefix(string(data), "skipped:"); ok {
		c.Skipped = strings.TrimSpace(reason)
		return c
	}
	c.Rate, c.PerJob, err = parseOverheadReport(string(data))
	c.LoadAvg = machineRow(string(data), "load average at start")
	if err != nil {
		c.Skipped = fmt.Sprintf("baseline report %s: %v", path, err)
	}
	return c
}

// parseOverheadReport reads the jobs/s and the messages per job from the
// overhead rows of a sheetbench report: `| overhead | jobs/s at saturation (...)
// | 610 |` and `| overhead | JetStream ops per job (...) | 39.5 |`.
func parseOverheadReport(doc string) (rate, perJob float64, err error) {
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || strings.TrimSpace(cells[1]) != "overhead" {
			continue
		}
		figure, value := strings.TrimSpace(cells[2]), strings.ReplaceAll(strings.TrimSpace(cells[3]), ",", "")
		switch {
		case strings.HasPrefix(figure, "jobs/s at saturation"):
			rate, err = strconv.ParseFloat(value, 64)
		case strings.HasPrefix(figure, "JetStream ops per job"):
			perJob, err = strconv.ParseFloat(value, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("row %q: %w", figure, err)
		}
	}
	if rate <= 0 || perJob <= 0 {
		return 0, 0, errors.New("no overhead jobs/s and ops per job rows")
	}
	return rate, perJob, nil
}

// machineRow is the value of the machine table's row named name, or "".
func machineRow(doc, name string) string {
	for _, line := range strings.Split(doc, "\n") {
		if cells := strings.Split(line, "|"); len(cells) == 4 && strings.TrimSpace(cells[1]) == name {
			return strings.TrimSpace(cells[2])
		}
	}
	return ""
}

// writeComparison writes the baseline's overhead figures beside this run's.
func (r *Results) writeComparison(w io.Writer) {
	c := r.Compare
	if c == nil {
		return
	}
	if c.Skipped != "" {
		fmt.Fprintf(w, "Side by side with the baseline %s: skipped (%s).\n\n", c.Ref, c.Skipped)
		return
	}
	if r.Overhead == nil {
		fmt.Fprintf(w, "Side by side with the baseline %s: skipped (this run has no overhead figures).\n\n", c.Ref)
		return
	}
	o := r.Overhead
	fmt.Fprintf(w, "Side by side in this run: the overhead scenario of the baseline %s's own sheetbench, "+
		"then this tree's (same machine, one after the other).\n\n", c.Ref)
	t := &table{head: []string{"Overhead scenario", "baseline " + c.Ref, "this tree", "this tree ÷ baseline"}}
	t.add("jobs/s at saturation", thousands(c.Rate), thousands(o.Rate), fmt.Sprintf("%.2f×", o.Rate/c.Rate))
	t.add("client messages per job (in_msgs)", fmt.Sprintf("%.1f", c.PerJob), fmt.Sprintf("%.1f", o.PerJob.ops),
		fmt.Sprintf("%.2f×", o.PerJob.ops/c.PerJob))
	t.add("load average at the run's start (1, 5, 15 min)", c.LoadAvg, r.Machine.LoadAvg, "")
	t.write(w)
	fmt.Fprintln(w, "One pair of runs: on a machine shared with other work the load differs between the two and "+
		"moves jobs/s far more than the ±15% of an idle machine; compare the load averages before trusting the ratio.")
	fmt.Fprintln(w)
}
