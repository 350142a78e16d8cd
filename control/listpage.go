package control

import (
	"slices"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// listPage cuts the page q asks for out of the sorted index: the matching jobs
// after q.Before, at most q.Limit, with the cursor of the next page and the number
// of matching jobs. A validated query's cursor parses.
func listPage(sorted []*indexEntry, q events.ListQuery) events.ListReply {
	match := matcher(q)
	start := 0
	if q.Before != "" {
		c, _ := events.ParseListCursor(q.Before)
		at := &indexEntry{sum: events.JobSummary{CreatedAt: c.CreatedAt, JobID: c.JobID}}
		i, found := slices.BinarySearchFunc(sorted, at, before)
		if found {
			i++
		}
		start = i
	}
	reply := events.ListReply{Jobs: []events.JobSummary{}}
	for i, e := range sorted {
		if !match(e) {
			continue
		}
		reply.Total++
		if i < start {
			continue
		}
		if len(reply.Jobs) == q.Limit {
			reply.Truncated = true
			continue
		}
		reply.Jobs = append(reply.Jobs, e.sum)
	}
	if reply.Truncated {
		last := reply.Jobs[len(reply.Jobs)-1]
		reply.Next = events.ListCursor{CreatedAt: last.CreatedAt, JobID: last.JobID}.String()
	}
	return reply
}

// matcher is q's filter.
func matcher(q events.ListQuery) func(*indexEntry) bool {
	text := strings.ToLower(q.Text)
	return func(e *indexEntry) bool {
		s := &e.sum
		return (q.Status == "" || s.Status == q.Status) && (q.UserID == "" || s.UserID == q.UserID) &&
			(q.Priority == "" || s.Priority == q.Priority || (q.Priority == events.PriorityNormal && s.Priority == "")) &&
			(q.BatchID == "" || s.BatchID == q.BatchID) && (text == "" || strings.Contains(e.prompt, text))
	}
}

// failuresShown is how many recent failures the overview lists.
const failuresShown = 10

// overview counts the index for GET /stats: jobs by status, running jobs by step
// and priority, and the latest failures.
func overview(sorted []*indexEntry) events.Overview {
	o := events.Overview{Statuses: map[events.Status]int{}, Running: []events.StepLoad{}, Failures: []events.JobSummary{},
		Jobs: len(sorted), Time: time.Now().UTC()}
	running := map[events.StepLoad]int{}
	for _, e := range sorted {
		s := &e.sum
		o.Statuses[s.Status]++
		if s.Status == events.StatusRunning {
			pr := s.Priority
			if pr == "" {
				pr = events.PriorityNormal
			}
			running[events.StepLoad{Step: s.Step, Priority: pr}]++
		}
		if s.Status == events.StatusError || s.Status == events.StatusWaitingManual {
			o.Failures = append(o.Failures, *s)
		}
	}
	for k, n := range running {
		k.Running = n
		o.Running = append(o.Running, k)
	}
	slices.SortFunc(o.Running, func(a, b events.StepLoad) int {
		return strings.Compare(string(a.Step)+"/"+string(a.Priority), string(b.Step)+"/"+string(b.Priority))
	})
	slices.SortFunc(o.Failures, func(a, b events.JobSummary) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	if len(o.Failures) > failuresShown {
		o.Failures = o.Failures[:failuresShown]
	}
	return o
}
