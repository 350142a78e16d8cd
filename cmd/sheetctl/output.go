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
// itself in JSON mode, else "YYYY-MM-DD HH:MM:SS status step +elapsed [retry n/m]
// message | error: ... (line n)", elapsed since the run started.
func (a *app) printEvent(ev events.StatusEvent, r *jobRun) {
	if a.opts.json {
		a.printJSON(ev)
		return
	}
	fmt.Fprintln(a.out, eventLine(ev, "", "+"+shortDuration(r.elapsed(ev))))
}

// printJobEvent prints one status change of any job: the date and time, the job
// id, then as printEvent without the elapsed time.
func (a *app) printJobEvent(ev events.StatusEvent) {
	if a.opts.json {
		a.printJSON(ev)
		return
	}
	fmt.Fprintln(a.out, eventLine(ev, ev.JobID, ""))
}

// eventLine is one event for people: date and time, job (when given), status,
// step, elapsed (when given), retries, message and error.
func eventLine(ev events.StatusEvent, job, elapsed string) string {
	var b strings.Builder
	b.WriteString(dateTime(eventTime(ev)))
	if job != "" {
		b.WriteString(" " + job)
	}
	fmt.Fprintf(&b, " %-14s %-7s", ev.Status, ev.Step)
	if elapsed != "" {
		fmt.Fprintf(&b, " %-6s", elapsed)
	}
	if ev.RetryCount > 0 {
		fmt.Fprintf(&b, " [retry %d/%d]", ev.RetryCount, ev.MaxRetries)
	}
	if ev.Message != "" {
		b.WriteString(" " + ev.Message)
	}
	if ev.Error != nil && ev.Error.Message != "" {
		b.WriteString(" | error: " + errorText(ev.Error))
	}
	return strings.TrimRight(b.String(), " ")
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

// printProgress says the job is still where its last event left it, after
// quiet without an event. JSON output carries events only.
func (a *app) printProgress(last *events.StatusEvent, r *jobRun, quiet time.Duration) {
	if a.opts.json {
		return
	}
	now := dateTime(time.Now())
	quiet = quiet.Round(time.Second)
	if last == nil {
		fmt.Fprintf(a.out, "%s still waiting for the service to take the job (%s; is sheetd running?)\n", now, quiet)
		return
	}
	fmt.Fprintf(a.out, "%s still %s at %s: nothing new for %s (%s since the run started)\n",
		now, last.Status, last.Step, quiet, r.elapsed(events.StatusEvent{Time: time.Now()}).Round(time.Second))
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
