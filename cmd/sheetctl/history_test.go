package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// history shows each run of a job with dates, durations, AI fixes and errors:
// a first run that needed an AI fix, a second (an edit that does not compile)
// that waits for a human.
func TestHistory(t *testing.T) {
	s := testpipeline.StartWith(t, llmSteps(brokenLatex, goodLatex))
	ctx := testContext(t)
	c := newTestClient(t, s)
	id, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	if last := waitRun(ctx, t, c, id, 0); last.Status != events.StatusCompleted {
		t.Fatalf("job ended %s", last.Status)
	}
	j, err := c.EditLatex(ctx, id, brokenLatex)
	if err != nil {
		t.Fatal(err)
	}
	if last := waitRun(ctx, t, c, id, j.Revision); last.Status != events.StatusWaitingManual {
		t.Fatalf("edited job ended %s", last.Status)
	}
	server := []string{"--server", s.ClientURL()}

	r := runSheetctl(ctx, nil, "", t.TempDir(), append(server, "history", id)...)
	if r.code != exitOK {
		t.Fatalf("history: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	date := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`
	for _, want := range []string{
		`^job ` + id + `: 2 runs\n`,
		`(?m)^run 1, started ` + date + `: completed at done after [0-9.]+m?s \(after 1 AI fix\)$`,
		`(?m)^  ` + date + `\.\d{3}  +[0-9.]+m?s +waiting_ai_fix +compile +- +Compile failed at line 3: .* \| error: Undefined control sequence\. \(line 3\)$`,
		`(?m)^  ` + date + `\.\d{3}  +- +completed +done +1/3 +PDF ready$`,
		`(?m)^run 2, started ` + date + `: waiting_manual at compile after [0-9.]+m?s$`,
		`(?m)^  ` + date + `\.\d{3}  +- +waiting_manual +compile +- +Compile failed at line 3: .*\(line 3\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("history lacks %s:\n%s", want, r.stdout)
		}
	}

	r = runSheetctl(ctx, nil, "", t.TempDir(), append(server, "--json", "history", id)...)
	var h historyJSON
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &h) != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("history --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	all, err := c.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.JobID != id || len(h.Runs) != 2 || len(h.Runs[0].Events)+len(h.Runs[1].Events) != len(all) {
		t.Fatalf("history --json: %+v, want 2 runs of the %d events", h, len(all))
	}
	for i, run := range h.Runs {
		var sum int64
		for _, ev := range run.Events {
			sum += ev.Duration
		}
		if run.Ended == nil || run.Duration <= 0 || sum > run.Duration || sum < run.Duration-int64(len(run.Events)) {
			t.Errorf("run %d: duration %dms, its events' %dms, ended %v", i+1, run.Duration, sum, run.Ended)
		}
	}
	if r0, r1 := h.Runs[0], h.Runs[1]; r0.Outcome != events.StatusCompleted || r0.AIFixes != 1 ||
		r1.Outcome != events.StatusWaitingManual || r1.AIFixes != 0 || r1.Events[0].Status != events.StatusPending {
		t.Errorf("runs %+v", h.Runs)
	}

	unknown := uuid.NewString()
	r = runSheetctl(ctx, nil, "", t.TempDir(), append(server, "history", unknown)...)
	if r.code != exitUnknown || r.stderr != "sheetctl: unknown job: no job "+unknown+"\n" {
		t.Fatalf("history of an unknown job: exit %d stderr %q, want 3", r.code, r.stderr)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), append(server, "history", "job-1")...)
	if r.code != exitUsage || !strings.Contains(r.stderr, `sheetctl: history: job id "job-1" is not a UUID`) {
		t.Fatalf("history of a bad id: exit %d stderr %q", r.code, r.stderr)
	}
}
