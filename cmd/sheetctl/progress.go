package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// jobRun is what sheetctl knows of the run of a job it follows: when the run
// started, and how many AI fixes and retries it took. A job's events may hold
// several runs (a retry, edit or refinement starts a new one); jobRun counts the
// latest.
type jobRun struct {
	start   time.Time // the time of the run's first event
	fixes   int       // AI fixes applied: waiting_ai_fix, then pending at compile
	retries int       // transient failures retried: status error
	inFix   bool      // the job is waiting for an AI fix
	ended   bool      // the last event ended a run; the next starts another
}

// add counts ev, one event of the job in order.
func (r *jobRun) add(ev events.StatusEvent) {
	at := eventTime(ev)
	if r.start.IsZero() || r.ended {
		*r = jobRun{start: at}
	}
	r.ended = ev.Final()
	switch {
	case ev.Status == events.StatusWaitingAIFix:
		r.inFix = true
	case ev.Status == events.StatusPending && r.inFix:
		r.fixes++
		r.inFix = false
	case ev.Status == events.StatusError && !ev.Final():
		r.retries++
	case ev.Final():
		r.inFix = false
	}
}

// elapsed is how long the run had lasted at ev.
func (r *jobRun) elapsed(ev events.StatusEvent) time.Duration {
	return eventTime(ev).Sub(r.start)
}

// after is "after 1 AI fix and 2 retries", "" when there were none.
func (r *jobRun) after() string {
	var parts []string
	if r.fixes > 0 {
		parts = append(parts, plural(r.fixes, "AI fix", "AI fixes"))
	}
	if r.retries > 0 {
		parts = append(parts, plural(r.retries, "retry", "retries"))
	}
	if len(parts) == 0 {
		return ""
	}
	return "after " + strings.Join(parts, " and ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// eventTime is the event's time, or now for an event without one.
func eventTime(ev events.StatusEvent) time.Time {
	if ev.Time.IsZero() {
		return time.Now()
	}
	return ev.Time
}

// dateTime is how sheetctl shows a moment: local date and time.
func dateTime(t time.Time) string { return t.Local().Format(time.DateTime) }

// shortDuration rounds d for people: tenths of a second below a minute, else
// seconds.
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
