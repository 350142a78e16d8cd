package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

const prompt = "a fractions worksheet for grade 5"

func TestSubmitSendsTheRequest(t *testing.T) {
	s := startPipeline(t)
	c := newTestClient(t, s)
	dir := t.TempDir()
	promptFile := filepath.Join(dir, "prompt.txt")
	if err := os.WriteFile(promptFile, []byte("\n"+prompt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fixedID := uuid.NewString()
	zero, five, three := 0, 5, events.DefaultMaxRetries
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  events.JobRequest // JobID empty: any new UUIDv4
	}{
		{"words", map[string]string{"USER": "ada"}, "", []string{"a", "fractions", "worksheet", "for", "grade", "5"},
			events.JobRequest{UserID: "ada", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
		{"no USER", nil, "", []string{prompt}, events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
		{"file", nil, "", []string{"--file", promptFile}, events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
		{"stdin", nil, prompt + "\n", []string{"-"}, events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
		{"file stdin", nil, prompt, []string{"--file", "-"}, events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
		{"every flag", map[string]string{"USER": "ada"}, "",
			[]string{"--user", "bob", "--max-retries", "5", "--mode", "manual", "--priority", "high", "--job-id", strings.ToUpper(fixedID), prompt},
			events.JobRequest{JobID: fixedID, UserID: "bob", Prompt: prompt, MaxRetries: &five, Mode: "manual", Priority: events.PriorityHigh}},
		{"depends on the job before", nil, "", []string{"--depends-on", fixedID, prompt},
			events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &three, Mode: events.ModeAuto, Priority: events.PriorityNormal,
				DependsOn: []string{fixedID}}},
		{"zero retries", nil, "", []string{prompt, "--max-retries", "0"},
			events.JobRequest{UserID: "cli", Prompt: prompt, MaxRetries: &zero, Mode: events.ModeAuto, Priority: events.PriorityNormal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			args := append([]string{"--server", s.ClientURL(), "submit"}, tc.args...)
			r := runSheetctl(ctx, tc.env, tc.stdin, t.TempDir(), args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			id := strings.TrimSpace(r.stdout)
			if u, err := uuid.Parse(id); err != nil || r.stdout != id+"\n" || (tc.want.JobID == "" && u.Version() != 4) {
				t.Fatalf("stdout %q, want a UUIDv4 line", r.stdout)
			}
			if tc.want.JobID != "" && id != tc.want.JobID {
				t.Fatalf("job id %s, want %s", id, tc.want.JobID)
			}
			j, err := c.Get(ctx, id)
			if err != nil {
				t.Fatalf("get the submitted job: %v", err)
			}
			got := events.JobRequest{JobID: j.ID, UserID: j.UserID, Prompt: j.Prompt, MaxRetries: &j.MaxRetries, Mode: j.Mode, Priority: j.Priority,
				DependsOn: j.DependsOn}
			tc.want.JobID = id
			if !sameRequest(got, tc.want) {
				t.Fatalf("stored %+v, want %+v", got, tc.want)
			}
		})
	}
}

func sameRequest(a, b events.JobRequest) bool {
	return a.JobID == b.JobID && a.UserID == b.UserID && a.Prompt == b.Prompt &&
		a.Mode == b.Mode && *a.MaxRetries == *b.MaxRetries && a.Priority == b.Priority &&
		strings.Join(a.DependsOn, ",") == strings.Join(b.DependsOn, ",")
}

// --webhook-url reaches the service, which refuses it here: the test pipeline has
// no webhook secret.
func TestSubmitWebhookURL(t *testing.T) {
	s := startPipeline(t)
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "--server", s.ClientURL(), "submit",
		"--webhook-url", "https://hooks.example.com/sheetpipe", prompt)
	if r.code != exitUsage || !strings.Contains(r.stderr, "webhooks are disabled") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit %d naming disabled webhooks", r.code, r.stderr, exitUsage)
	}
}

func TestSubmitWaitJSON(t *testing.T) {
	s := startPipeline(t)
	dir := t.TempDir()
	r := runSheetctl(testContext(t), nil, "", dir, "--json", "--server", s.ClientURL(), "submit", "--wait", prompt)
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var submitted struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &submitted); err != nil || submitted.JobID == "" {
		t.Fatalf("first line %q, want {\"job_id\"}", lines[0])
	}
	var statuses []events.Status
	for _, l := range lines[1 : len(lines)-1] {
		var ev events.StatusEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.JobID != submitted.JobID {
			t.Fatalf("line %q is not an event of job %s (%v)", l, submitted.JobID, err)
		}
		statuses = append(statuses, ev.Status)
	}
	if len(statuses) == 0 || statuses[0] != events.StatusPending || statuses[len(statuses)-1] != events.StatusCompleted {
		t.Fatalf("statuses %v, want pending ... completed", statuses)
	}
	var saved struct {
		JobID string `json:"job_id"`
		PDF   string `json:"pdf"`
		Size  int    `json:"size"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &saved); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	want := filepath.Join(dir, submitted.JobID+".pdf")
	pdf, err := os.ReadFile(want)
	if err != nil || saved.PDF != want || saved.Size != len(pdf) || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("saved %+v, want %s holding %d bytes of PDF (%v)", saved, want, len(pdf), err)
	}
}

// A job that ends without a PDF makes submit --wait and watch exit 1 with its
// error and snippet; resubmitting its id with another prompt is refused (exit 4).
func TestWaitForFailedJob(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	id := waitingManualJob(ctx, t, c)
	for name, args := range map[string][]string{
		"watch":                     {"watch", id},
		"submit --wait the same id": {"submit", "--wait", "--user", "ada", "--job-id", id, prompt},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := runSheetctl(ctx, nil, "", dir, append([]string{"--server", s.ClientURL()}, args...)...)
			want := "sheetctl: job " + id + " waiting_manual at compile: "
			if r.code != exitFailure || !strings.HasPrefix(r.stderr, want) ||
				!strings.Contains(r.stderr, "(line 3)\n  ") || !strings.Contains(r.stderr, "undefinedmacro") {
				t.Fatalf("exit %d stderr %q, want 1 and %q ... (line 3) and the snippet", r.code, r.stderr, want)
			}
			if !strings.Contains(r.stdout, " waiting_manual compile ") {
				t.Fatalf("stdout lacks the waiting_manual event:\n%s", r.stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("files written for a failed job: %v", entries)
			}
		})
	}
	r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "submit", "--user", "ada", "--job-id", id, "another worksheet")
	if r.code != exitState || !strings.Contains(r.stderr, "already exists with a different request") {
		t.Fatalf("resubmit with another prompt: exit %d stderr %q, want 4", r.code, r.stderr)
	}
}

func TestWatchAndPDFOfCompletedJob(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	id := completedJob(ctx, t, newTestClient(t, s))
	dir := t.TempDir()
	r := runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "watch", id)
	if r.code != exitOK || !strings.Contains(r.stdout, " completed      done ") {
		t.Fatalf("watch: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	watched, err := os.ReadFile(filepath.Join(dir, id+".pdf"))
	if err != nil || !bytes.HasPrefix(watched, []byte("%PDF")) {
		t.Fatalf("watch wrote no PDF: %v", err)
	}

	out := filepath.Join(dir, "sheet.pdf")
	r = runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "pdf", "--output", out, id)
	if r.code != exitOK || !strings.Contains(r.stdout, "saved "+out) {
		t.Fatalf("pdf: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, watched) {
		t.Fatalf("pdf --output wrote %d bytes (%v), want the job's %d", len(got), err, len(watched))
	}
	short := filepath.Join(dir, "short.pdf")
	r = runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "--json", "pdf", "-o", short, id)
	want := fmt.Sprintf(`{"job_id":%q,"pdf":%q,"size":%d}`+"\n", id, short, len(watched))
	if got, err := os.ReadFile(short); r.code != exitOK || r.stdout != want || err != nil || !bytes.Equal(got, watched) {
		t.Fatalf("pdf --json -o: exit %d stdout %q (file: %v), want %q", r.code, r.stdout, err, want)
	}

	unknown := uuid.NewString()
	r = runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "pdf", unknown)
	if r.code != exitUnknown || r.stderr != "sheetctl: download PDF: unknown job: no job "+unknown+"\n" {
		t.Fatalf("pdf of unknown job: exit %d stderr %q", r.code, r.stderr)
	}
	r = runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "watch", unknown)
	if r.code != exitUnknown || r.stderr != "sheetctl: unknown job: no job "+unknown+"\n" {
		t.Fatalf("watch of unknown job: exit %d stderr %q, want 3", r.code, r.stderr)
	}
}
