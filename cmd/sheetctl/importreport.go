package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/importer"
)

// importOutcomes are the report's columns.
var importOutcomes = []string{events.ImportImported, events.ImportResumed, events.ImportSkipped, events.ImportRefused}

// unread is the status row of records refused before their status was read.
const unread = "(unread)"

// importReport tallies the results of an import.
type importReport struct {
	dir, layout   string
	conversations int
	dryRun        bool
	results       []events.ImportResult
	counts        map[string]map[string]int // old status -> outcome -> n
	totals        map[string]int
}

func newImportReport(dir string, s *importer.Store, dryRun bool) *importReport {
	r := &importReport{dir: dir, layout: s.Layout, conversations: s.Conversations, dryRun: dryRun,
		counts: map[string]map[string]int{}, totals: map[string]int{}}
	for _, x := range s.Sorted() {
		r.add(events.ImportResult{JobID: x.JobID, Source: x.Source, Outcome: events.ImportRefused, OldStatus: x.Status, Reason: x.Reason})
	}
	return r
}

func (r *importReport) add(results ...events.ImportResult) {
	for _, res := range results {
		st := string(res.OldStatus)
		if st == "" {
			st = unread
		}
		if r.counts[st] == nil {
			r.counts[st] = map[string]int{}
		}
		r.counts[st][res.Outcome]++
		r.totals[res.Outcome]++
		r.results = append(r.results, res)
	}
}

func (r *importReport) records() int { return len(r.results) }

// statuses are the report's rows: the contract's statuses in order, then any
// other the store had.
func (r *importReport) statuses() []string {
	order := []string{"pending", "running", "error", "waiting_ai_fix", "waiting_manual", "completed", "aborted"}
	var rows []string
	for _, st := range order {
		if r.counts[st] != nil {
			rows = append(rows, st)
		}
	}
	var other []string
	for st := range r.counts {
		if !slices.Contains(order, st) {
			other = append(other, st)
		}
	}
	slices.Sort(other)
	return append(rows, other...)
}

func (r *importReport) print(w io.Writer) {
	if r.dryRun {
		fmt.Fprintf(w, "Dry run: nothing was written. An import of %s (%s layout) would do this:\n", r.dir, r.layout)
	} else {
		fmt.Fprintf(w, "Import of %s (%s layout): %d records, %d conversations read\n", r.dir, r.layout, r.records(), r.conversations)
	}
	fmt.Fprintf(w, "%-16s", "old status")
	for _, o := range importOutcomes {
		fmt.Fprintf(w, " %9s", o)
	}
	fmt.Fprintln(w)
	row := func(name string, n map[string]int) {
		fmt.Fprintf(w, "%-16s", name)
		for _, o := range importOutcomes {
			fmt.Fprintf(w, " %9d", n[o])
		}
		fmt.Fprintln(w)
	}
	for _, st := range r.statuses() {
		row(st, r.counts[st])
	}
	row("total", r.totals)
	r.printList(w, "Refused", func(res events.ImportResult) string {
		if res.Outcome == events.ImportRefused {
			return res.Reason
		}
		return ""
	})
	r.printList(w, "Notes", func(res events.ImportResult) string {
		if res.Outcome != events.ImportRefused && res.Note != "" {
			return res.Note
		}
		return ""
	})
}

// printList prints the records for which text says something, one a line.
func (r *importReport) printList(w io.Writer, title string, text func(events.ImportResult) string) {
	var lines []string
	for _, res := range r.results {
		if t := text(res); t != "" {
			who := res.Source
			if res.JobID != "" {
				who = strings.TrimSpace(who + " job " + res.JobID)
			}
			lines = append(lines, fmt.Sprintf("  %s: %s", who, t))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s (%d):\n%s\n", title, len(lines), strings.Join(lines, "\n"))
}

// importJSON is the --json report.
type importJSON struct {
	Dir           string                    `json:"dir"`
	Layout        string                    `json:"layout"`
	DryRun        bool                      `json:"dry_run"`
	Conversations int                       `json:"conversations"`
	Counts        map[string]map[string]int `json:"counts"`
	Totals        map[string]int            `json:"totals"`
	Results       []events.ImportResult     `json:"results"`
}

func (r *importReport) json() importJSON {
	return importJSON{Dir: r.dir, Layout: r.layout, DryRun: r.dryRun, Conversations: r.conversations,
		Counts: r.counts, Totals: r.totals, Results: r.results}
}
