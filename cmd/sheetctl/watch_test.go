package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// watch without a job id prints the events of every job, one line each (or one
// JSON object each), until interrupted, which exits 0.
func TestWatchAllJobs(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)

	type watcher struct {
		out, err syncBuffer
		code     chan int
	}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := func(args ...string) *watcher {
		w := &watcher{code: make(chan int, 1)}
		sio := stdio{in: strings.NewReader(""), out: &w.out, err: &w.err, dir: t.TempDir(), getenv: func(string) string { return "" }}
		go func() { w.code <- run(watchCtx, sio, append([]string{"--server", s.ClientURL()}, args...)) }()
		return w
	}
	human, machine := start("watch"), start("--json", "watch")
	for _, w := range []*watcher{human, machine} {
		waitFor(ctx, t, func() bool { return strings.Contains(w.err.String(), "watching the events of every job") },
			"watch to start", &w.err)
	}

	var ids []string
	for _, req := range []events.JobRequest{{UserID: "ada", Prompt: prompt}, {UserID: "bob", Prompt: "an addition worksheet"}} {
		id, err := c.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitRun(ctx, t, c, id, 0)
		line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ` + id + ` completed +done `)
		waitFor(ctx, t, func() bool { return line.MatchString(human.out.String()) }, "the completion of "+id, &human.out)
		waitFor(ctx, t, func() bool {
			return strings.Contains(machine.out.String(), `{"job_id":"`+id+`","user_id":"`) &&
				strings.Contains(machine.out.String(), `"status":"completed"`)
		}, "the JSON completion of "+id, &machine.out)
	}
	stop()
	for name, w := range map[string]*watcher{"human": human, "json": machine} {
		select {
		case code := <-w.code:
			if code != exitOK {
				t.Fatalf("%s watch exited %d after the interrupt; stderr:\n%s", name, code, w.err.String())
			}
		case <-ctx.Done():
			t.Fatalf("%s watch did not end after the interrupt", name)
		}
	}

	for _, l := range strings.Split(strings.TrimSpace(human.out.String()), "\n") {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (` + ids[0] + `|` + ids[1] + `) \S+ +\S+`).MatchString(l) {
			t.Fatalf("line %q is not \"HH:MM:SS <job id> status step ...\" of one of the jobs", l)
		}
	}
	seen := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(machine.out.String()), "\n") {
		var ev events.StatusEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Revision <= seen[ev.JobID] {
			t.Fatalf("line %q: %v; want events in revision order per job", l, err)
		}
		seen[ev.JobID] = ev.Revision
	}
	if len(seen) != 2 {
		t.Fatalf("JSON watch saw jobs %v, want %v", seen, ids)
	}

	r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "watch", "--timeout", "100ms")
	if r.code != exitOK || r.stdout != "" {
		t.Fatalf("watch --timeout with no job running: exit %d stdout %q stderr %q, want 0 and no events", r.code, r.stdout, r.stderr)
	}
}

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, cond func() bool, what string, out *syncBuffer) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s; output:\n%s", what, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
