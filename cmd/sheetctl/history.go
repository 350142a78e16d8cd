package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var historyCommand = &command{
	name:    "history",
	args:    "<job-id>",
	summary: "every run of a job: each status change with its date, duration and error",
	about: `Prints the job's status events that JOB_EVENTS still holds, grouped in runs (a
retry, edit or refinement starts a new run): for each run when it started, how it
ended (or that it still goes on), how long it took and after how many AI fixes
and retries; for each event its date and time, how long the job stayed in that
state, status, step, retries, message and error. --json prints one object: the
runs with their events, each with duration_ms. Exits 3 if there is no such job.`,
	setup: func(a *app, _ *pflag.FlagSet) func(context.Context, []string) error {
		return a.history
	},
}

func (a *app) history(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("history", "history needs one job id")
	}
	id, err := jobIDArg("history", args[0])
	if err != nil {
		return err
	}
	return a.withClient(func(c *client.Client) error {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		evs, err := c.History(reqCtx, id)
		if err != nil {
			return refused(err, "history of job %s", id)
		}
		runs := splitRuns(evs, time.Now())
		if a.opts.json {
			a.printJSON(historyJSON{JobID: id, Runs: runs})
			return nil
		}
		printHistory(a.out, id, runs)
		return nil
	})
}

// historyRun is one run of a job: from the event after a final one (or the
// first) to the next final one, or to now while it goes on.
type historyRun struct {
	Run      int            `json:"run"`
	Started  time.Time      `json:"started"`
	Ended    *time.Time     `json:"ended,omitempty"` // nil while the run goes on
	Outcome  events.Status  `json:"outcome"`         // the status it ended with, or is in
	Step     events.Step    `json:"step"`
	Duration int64          `json:"duration_ms"` // until it ended, or until now
	AIFixes  int            `json:"ai_fixes"`
	Retries  int            `json:"retries"`
	Events   []historyEvent `json:"events"`
	summary  string
}

// historyEvent is an event with how long the job stayed in its state: until the
// next event, or until now for the current state of a run that goes on; 0 for
// the event that ended a run.
type historyEvent struct {
	events.StatusEvent
	Duration int64 `json:"duration_ms"`
}

// MarshalJSON is the event's JSON (events.StatusEvent's own, which embedding
// would make the whole) with duration_ms.
func (e historyEvent) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(e.StatusEvent)
	if err != nil || len(data) < 2 {
		return data, err
	}
	return fmt.Appendf(data[:len(data)-1], `,"duration_ms":%d}`, e.Duration), nil
}

type historyJSON struct {
	JobID string       `json:"job_id"`
	Runs  []historyRun `json:"runs"`
}

// splitRuns groups a job's events (in revision order) in runs.
func splitRuns(evs []events.StatusEvent, now time.Time) []historyRun {
	var (
		runs []historyRun
		r    jobRun
	)
	for i, ev := range evs {
		if i == 0 || evs[i-1].Final() {
			runs = append(runs, historyRun{Run: len(runs) + 1, Started: eventTime(ev)})
		}
		r.add(ev)
		cur := &runs[len(runs)-1]
		d := time.Duration(0)
		switch {
		case i+1 < len(evs) && !ev.Final():
			d = eventTime(evs[i+1]).Sub(eventTime(ev))
		case !ev.Final():
			d = now.Sub(eventTime(ev))
		}
		cur.Events = append(cur.Events, historyEvent{StatusEvent: ev, Duration: d.Milliseconds()})
		cur.Outcome, cur.Step, cur.AIFixes, cur.Retries = ev.Status, ev.Step, r.fixes, r.retries
		if ev.Final() {
			end := eventTime(ev)
			cur.Ended = &end
			cur.Duration = end.Sub(cur.Started).Milliseconds()
			cur.summary = r.after()
		} else {
			cur.Duration = now.Sub(cur.Started).Milliseconds()
			cur.summary = r.after()
		}
	}
	return runs
}

func printHistory(w io.Writer, id string, runs []historyRun) {
	if len(runs) == 0 {
		fmt.Fprintf(w, "job %s: no events held (they age out of JOB_EVENTS); sheetctl get %s shows its state\n", id, id)
		return
	}
	fmt.Fprintf(w, "job %s: %s\n", id, plural(len(runs), "run", "runs"))
	for _, r := range runs {
		how := fmt.Sprintf("%s at %s after %s", r.Outcome, r.Step, shortDuration(time.Duration(r.Duration)*time.Millisecond))
		if r.Ended == nil {
			how = fmt.Sprintf("still %s at %s, for %s so far", r.Outcome, r.Step, shortDuration(time.Duration(r.Duration)*time.Millisecond))
		}
		if r.summary != "" {
			how += " (" + r.summary + ")"
		}
		fmt.Fprintf(w, "\nrun %d, started %s: %s\n", r.Run, dateTime(r.Started), how)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tFOR\tSTATUS\tSTEP\tRETRIES\tMESSAGE")
		for _, ev := range r.Events {
			took := "-"
			if ev.Duration > 0 || !ev.Final() {
				took = preciseDuration(time.Duration(ev.Duration) * time.Millisecond)
			}
			retries := "-"
			if ev.RetryCount > 0 {
				retries = fmt.Sprintf("%d/%d", ev.RetryCount, ev.MaxRetries)
			}
			msg := ev.Message
			if ev.Error != nil && ev.Error.Message != "" {
				msg += " | error: " + errorText(ev.Error)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", eventTime(ev.StatusEvent).Local().Format("2006-01-02 15:04:05.000"),
				took, ev.Status, ev.Step, retries, strings.ReplaceAll(msg, "\n", " "))
		}
		tw.Flush()
	}
}

// preciseDuration is d in milliseconds below a second, else as shortDuration.
func preciseDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return shortDuration(d)
}
