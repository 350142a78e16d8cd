package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// printSubmitted reports an accepted job: its bare id, so that scripts can capture
// it, or a sentence when a wait follows.
func (a *app) printSubmitted(id string, wait bool) {
	switch {
	case a.opts.json:
		a.printJSON(map[string]string{"job_id": id})
	case wait:
		fmt.Fprintf(a.out, "job %s submitted\n", id)
	default:
		fmt.Fprintln(a.out, id)
	}
}

// printEvent prints one status change of the job being followed: the event
// itself in JSON mode, else "HH:MM:SS status step [retry n/m] message | error: ...
// (line n)".
func (a *app) printEvent(ev events.StatusEvent) {
	if a.opts.json {
		a.printJSON(ev)
		return
	}
	fmt.Fprintln(a.out, eventLine(ev, false))
}

// printJobEvent prints one status change of any job: as printEvent, with the job
// id after the time.
func (a *app) printJobEvent(ev events.StatusEvent) {
	if a.opts.json {
		a.printJSON(ev)
		return
	}
	fmt.Fprintln(a.out, eventLine(ev, true))
}

func eventLine(ev events.StatusEvent, withJob bool) string {
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	var b strings.Builder
	b.WriteString(at.Local().Format(time.TimeOnly))
	if withJob {
		b.WriteString(" " + ev.JobID)
	}
	fmt.Fprintf(&b, " %-14s %-7s", ev.Status, ev.Step)
	if ev.RetryCount > 0 {
		fmt.Fprintf(&b, " [retry %d/%d]", ev.RetryCount, ev.MaxRetries)
	}
	if ev.Message != "" {
		b.WriteString(" " + ev.Message)
	}
	if ev.Error != nil && ev.Error.Message != "" {
		b.WriteString(" | error: " + errorText(ev.Error))
	}
	return b.String()
}

// printChanged reports the job a control request left: the job's JSON in JSON
// mode, else "job <id> <status> at <step>: <message>".
func (a *app) printChanged(j *events.Versioned) {
	if a.opts.json {
		a.printJSON(j)
		return
	}
	fmt.Fprintf(a.out, "job %s %s at %s: %s\n", j.ID, j.Status, j.CurrentStep, j.Message)
}

// printProgress says the job is still where its last event left it. JSON output
// carries events only.
func (a *app) printProgress(last *events.StatusEvent, quiet time.Duration) {
	if a.opts.json {
		return
	}
	quiet = quiet.Round(time.Second)
	if last == nil {
		fmt.Fprintf(a.out, "still waiting for the service to take the job (%s; is sheetd running?)\n", quiet)
		return
	}
	fmt.Fprintf(a.out, "still %s at %s (%s)\n", last.Status, last.Step, quiet)
}

// printSaved reports a PDF written to path.
func (a *app) printSaved(id, path string, size int) {
	if a.opts.json {
		a.printJSON(struct {
			JobID string `json:"job_id"`
			PDF   string `json:"pdf"`
			Size  int    `json:"size"`
		}{id, path, size})
		return
	}
	fmt.Fprintf(a.out, "saved %s (%d bytes)\n", path, size)
}

func (a *app) printJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(a.err, "sheetctl: encode output: %v\n", err)
		return
	}
	fmt.Fprintf(a.out, "%s\n", data)
}

// errorText is "message (line n)", or the message alone when the line is unknown.
func errorText(e *events.ErrorInfo) string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d)", e.Message, e.Line)
	}
	return e.Message
}
