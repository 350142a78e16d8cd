package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// soakLLM is a flaky LLM for the soak: every call waits 0-300ms and fails with a
// 500 one time in five. The LaTeX of one job in ten does not compile; the AI fix
// repairs it, except for one job in thirty, whose every fix is broken too. It
// counts the successful answers per job and step.
type soakLLM struct {
	mu        sync.Mutex
	successes map[string]map[int]int // step -> worksheet number -> answers
	failures  int
}

var soakJobs = flag.Int("soak-jobs", 500, "jobs TestSoak runs (at most 100 with -short)")

var soakNumber = regexp.MustCompile(`worksheet (\d+)\b`)

func (l *soakLLM) handle(req fakellm.Request) fakellm.Reply {
	n := -1
	for _, m := range req.Messages {
		if sm := soakNumber.FindStringSubmatch(m.Content); sm != nil {
			n, _ = strconv.Atoi(sm[1])
			break
		}
	}
	delay := rand.N(300 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 {
		return fakellm.Reply{Status: http.StatusBadRequest, Content: "no worksheet number in the conversation"}
	}
	if rand.N(5) == 0 {
		l.failures++
		return fakellm.Reply{Status: http.StatusInternalServerError, Content: "injected failure", Delay: delay}
	}
	if l.successes[req.Step] == nil {
		l.successes[req.Step] = map[int]int{}
	}
	l.successes[req.Step][n]++
	reply := fakellm.Reply{Delay: delay, Content: testLatex}
	switch {
	case req.Step == "design":
		reply.Content = fmt.Sprintf("Outline of worksheet %d: two fraction sums.", n)
	case req.Step == "latex" && soakBroken(n), req.Step == "fix" && soakUnfixable(n):
		reply.Content = brokenLatex
	}
	return reply
}

func soakBroken(n int) bool    { return n%10 == 3 }
func soakUnfixable(n int) bool { return n%30 == 3 }

func (l *soakLLM) failureCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

func (l *soakLLM) answers(step string, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.successes[step][n]
}

// TestSoak runs 500 jobs (-soak-jobs; at most 100 with -short) through two sheetd processes sharing a
// standalone nats-server, with a flaky LLM (soakLLM), real pdflatex, and checks
// every invariant a user relies on:
//   - every job reaches a final state;
//   - its events (replayed from JOB_EVENTS, deduplicated by revision) follow the
//     state machine, with retry_count never above max_retries, and at most one
//     completed revision; its last event agrees with its KV value;
//   - no LLM step of a job was answered twice (a success is recorded and reused),
//     and a completed job's retry_count is its number of AI fixes;
//   - jobs whose fixes are all broken never complete;
//   - jobs_finished_total{status}, summed over both processes, equals the count
//     of jobs in that status.
func TestSoak(t *testing.T) {
	total := *soakJobs
	if testing.Short() {
		total = min(total, 100)
	}
	ctx := testContext(t)
	ns := startNATSServer(t)
	llm := &soakLLM{successes: map[string]map[int]int{}}
	d := &deployment{t: t, natsURL: ns.URL(), llm: fakellm.New(t, llm.handle)}
	workers := []*worker{d.startWorker("sheetd-1"), d.startWorker("sheetd-2")}
	c := dial(t, ctx, ns.URL())
	ids := newIDs(total)
	started := time.Now()
	c.submitMany(ids, func(i int) string { return fmt.Sprintf("worksheet %d: adding fractions, grade 5", i) })
	jobs := c.waitFinal(ids, 3*time.Minute, workers...)
	elapsed := time.Since(started)
	all := c.settledEvents(jobs)
	counts := checkRun(t, jobs, all)
	t.Logf("%d jobs final in %s with two sheetd: %v; %d injected LLM failures", total, elapsed.Round(100*time.Millisecond), counts, llm.failureCount())

	reasons := map[string]int{}
	for i, id := range ids {
		j := jobs[id]
		for _, step := range []string{"design", "latex"} {
			if n := llm.answers(step, i); n > 1 {
				t.Errorf("worksheet %d: %d successful %s answers, want at most 1 (a recorded answer is reused)", i, n, step)
			}
		}
		fixes := llm.answers("fix", i)
		switch j.Status {
		case events.StatusCompleted:
			if soakUnfixable(i) || j.Latex != strings.TrimSpace(testLatex) || j.RetryCount != fixes {
				t.Errorf("worksheet %d completed: unfixable %v, latex good %v, retry_count %d with %d fixes",
					i, soakUnfixable(i), j.Latex == strings.TrimSpace(testLatex), j.RetryCount, fixes)
			}
		case events.StatusWaitingManual:
			reasons[j.Message]++
		default:
			t.Errorf("worksheet %d ended %s: %s", i, j.Status, j.Message)
		}
	}
	t.Logf("waiting_manual reasons: %v", reasons)
	var compiles, compileSeconds float64
	for _, w := range workers {
		for _, outcome := range []string{"ok", "latex_error"} {
			compiles += w.metric(fmt.Sprintf(`sheetpipe_compile_duration_seconds_count{outcome=%q}`, outcome))
			compileSeconds += w.metric(fmt.Sprintf(`sheetpipe_compile_duration_seconds_sum{outcome=%q}`, outcome))
		}
	}
	if compiles > 0 {
		t.Logf("%v pdflatex runs, %.0fms each on average", compiles, 1000*compileSeconds/compiles)
	}
	for _, st := range []events.Status{events.StatusCompleted, events.StatusWaitingManual} {
		var sum float64
		for _, w := range workers {
			sum += w.metric(fmt.Sprintf(`sheetpipe_jobs_finished_total{status=%q}`, st))
		}
		if int(sum) != counts[st] {
			t.Errorf("jobs_finished_total{status=%q} summed over both sheetd is %v, but %d jobs are %s", st, sum, counts[st], st)
		}
	}
}
