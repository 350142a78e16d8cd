package main

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// follows reports whether status to may follow status from in a run of the
// tests: a change the pipeline makes on its own, a submit ("" is a job's first
// event) or a user's abort, as the lifecycle's table says.
func follows(from, to events.Status) bool {
	return lifecycle.Follows(from, to, lifecycle.ByPipeline) ||
		(from == "" || to == events.StatusAborted) && lifecycle.Follows(from, to, lifecycle.ByUser)
}

// history is one job's status events deduplicated by revision (a re-emitted event
// repeats its revision) and ordered by it.
type history []events.StatusEvent

// checkHistory checks one job's events against the state machine and returns
// them deduplicated; every problem is reported with t.Errorf. It checks: events
// of one revision agree; revisions and times rise together; each status may
// follow the one before; retry_count never exceeds max_retries; nothing follows
// a final status (so at most one completed revision).
func checkHistory(t *testing.T, id string, evs []events.StatusEvent) history {
	t.Helper()
	byRev := map[uint64]events.StatusEvent{}
	for _, ev := range evs {
		if prev, ok := byRev[ev.Revision]; ok && (prev.Status != ev.Status || prev.Step != ev.Step) {
			t.Errorf("job %s: revision %d published as %s/%s and as %s/%s", id, ev.Revision, prev.Status, prev.Step, ev.Status, ev.Step)
		}
		byRev[ev.Revision] = ev
	}
	h := make(history, 0, len(byRev))
	for _, ev := range byRev {
		h = append(h, ev)
	}
	slices.SortFunc(h, func(a, b events.StatusEvent) int { return cmp.Compare(a.Revision, b.Revision) })
	prev := events.Status("")
	for i, ev := range h {
		if !follows(prev, ev.Status) {
			t.Errorf("job %s: %q follows %q at revision %d:%s", id, ev.Status, prev, ev.Revision, describe(h))
		}
		if ev.RetryCount > ev.MaxRetries || ev.RetryCount < 0 {
			t.Errorf("job %s: retry_count %d outside 0..max_retries %d at revision %d", id, ev.RetryCount, ev.MaxRetries, ev.Revision)
		}
		if i > 0 && ev.Time.Before(h[i-1].Time) {
			t.Errorf("job %s: revision %d at %s is older than revision %d:%s", id, ev.Revision, ev.Time, h[i-1].Revision, describe(h))
		}
		prev = ev.Status
	}
	return h
}

// count is how many of h's revisions have status st.
func (h history) count(st events.Status) int {
	n := 0
	for _, ev := range h {
		if ev.Status == st {
			n++
		}
	}
	return n
}

// settledEvents waits until JOB_EVENTS holds an event of every job's final status
// (the event follows the KV write), gives the service a moment to (wrongly)
// publish more, and returns every job's events.
func (c *client) settledEvents(jobs map[string]*events.Job) map[string][]events.StatusEvent {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := c.replay()
		missing := ""
		for id, j := range jobs {
			if !slices.ContainsFunc(all[id], func(ev events.StatusEvent) bool { return ev.Status == j.Status }) {
				missing = id
				break
			}
		}
		if missing == "" {
			time.Sleep(500 * time.Millisecond)
			return c.replay()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s is %s in KV but JOB_EVENTS has no such event within 30s:%s",
				missing, jobs[missing].Status, describe(all[missing]))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkRun checks every job of a finished run: its history (checkHistory), at
// most one completed revision, its last event agreeing with its KV value, its
// retry budget kept, a completed job's PDF URL. It returns the jobs per status.
func checkRun(t *testing.T, jobs map[string]*events.Job, all map[string][]events.StatusEvent) map[events.Status]int {
	t.Helper()
	counts := map[events.Status]int{}
	for id, j := range jobs {
		h := checkHistory(t, id, all[id])
		if n := h.count(events.StatusCompleted); n > 1 {
			t.Errorf("job %s completed %d times:%s", id, n, describe(h))
		}
		if len(h) == 0 || h[len(h)-1].Status != j.Status {
			t.Errorf("job %s is %s in KV, its last event disagrees:%s", id, j.Status, describe(h))
		}
		if j.RetryCount > j.MaxRetries {
			t.Errorf("job %s: retry_count %d > max_retries %d", id, j.RetryCount, j.MaxRetries)
		}
		if j.Status == events.StatusCompleted && j.PDFURL != "/jobs/"+id+"/pdf" {
			t.Errorf("job %s completed with pdf_url %q", id, j.PDFURL)
		}
		counts[j.Status]++
	}
	return counts
}
