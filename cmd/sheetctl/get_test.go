package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

func TestGet(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	done := completedJob(ctx, t, c)
	manual := waitingManualJob(ctx, t, c)
	job, err := c.Get(ctx, done)
	if err != nil {
		t.Fatal(err)
	}
	unknown := uuid.NewString()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings, or the whole output when exact
		exact  bool
		stderr string
	}{
		{"summary", []string{"get", done}, exitOK, []string{
			"job       " + done + "\n", "status    completed at done (revision ", "retries   0/3\n", "priority  normal\n",
			"pdf_url   /jobs/" + done + "/pdf\n", "prompt    " + prompt + "\n"}, false, ""},
		{"error with line and snippet", []string{"get", manual}, exitOK, []string{
			"status    waiting_manual at compile", "error     ", "(line 3)\n", "snippet   ", "undefinedmacro"}, false, ""},
		{"latex", []string{"get", "--latex", done}, exitOK, []string{strings.TrimSuffix(job.Latex, "\n") + "\n"}, true, ""},
		{"unknown job", []string{"get", unknown}, exitUnknown, []string{""}, true, "sheetctl: unknown job: no job " + unknown + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(ctx, nil, "", t.TempDir(), append([]string{"--server", s.ClientURL()}, tc.args...)...)
			if r.code != tc.code || r.stderr != tc.stderr {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			if tc.exact && r.stdout != tc.stdout[0] {
				t.Fatalf("stdout:\n%q\nwant\n%q", r.stdout, tc.stdout[0])
			}
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Fatalf("stdout:\n%s\nwant it to contain %q", r.stdout, want)
				}
			}
		})
	}

	r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "get", "--json", done)
	var got events.Versioned
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != exitOK || err != nil || strings.Count(r.stdout, "\n") != 1 ||
		got.ID != done || got.Status != events.StatusCompleted || got.Revision != job.Revision || got.Latex != job.Latex {
		t.Fatalf("get --json: exit %d (%v)\n%s\nwant the job at revision %d on one line", r.code, err, r.stdout, job.Revision)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "--json", "get", "--latex", done)
	var latex struct {
		JobID string `json:"job_id"`
		Latex string `json:"latex"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &latex); r.code != exitOK || err != nil || latex.JobID != done || latex.Latex != job.Latex {
		t.Fatalf("get --latex --json: exit %d (%v)\n%s", r.code, err, r.stdout)
	}
}

func TestList(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	adas := completedJob(ctx, t, c)
	bobs, err := c.Submit(ctx, events.JobRequest{UserID: "bob", Prompt: "an addition worksheet"})
	if err != nil {
		t.Fatal(err)
	}
	waitRun(ctx, t, c, bobs, 0)
	for _, tc := range []struct {
		name   string
		args   []string
		rows   []string // job ids in order
		stderr string
	}{
		{"all, newest first", nil, []string{bobs, adas}, ""},
		{"one user", []string{"--user", "bob"}, []string{bobs}, ""},
		{"status and user", []string{"--status", "completed", "--user", "ada"}, []string{adas}, ""},
		{"no match", []string{"--status", "aborted"}, nil, ""},
		{"limit", []string{"--limit", "1"}, []string{bobs}, "more jobs match; show more with --limit (at most 1000)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				args := append([]string{"--server", s.ClientURL(), "list"}, tc.args...)
				if asJSON {
					args = append(args, "--json")
				}
				r := runSheetctl(ctx, nil, "", t.TempDir(), args...)
				if r.code != exitOK || r.stderr != tc.stderr {
					t.Fatalf("json %v: exit %d stderr %q, want 0 and %q", asJSON, r.code, r.stderr, tc.stderr)
				}
				if got := listedIDs(t, r.stdout, asJSON); strings.Join(got, ",") != strings.Join(tc.rows, ",") {
					t.Fatalf("json %v: listed %v, want %v; stdout:\n%s", asJSON, got, tc.rows, r.stdout)
				}
			}
		})
	}
}

// listedIDs reads the job ids of list's output: the table's first column under
// its header ("no jobs" when empty), or one JSON object per line.
func listedIDs(t *testing.T, stdout string, asJSON bool) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var ids []string
	switch {
	case asJSON && stdout == "":
	case asJSON:
		for _, l := range lines {
			var j events.JobSummary
			if err := json.Unmarshal([]byte(l), &j); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			ids = append(ids, j.JobID)
		}
	case stdout == "no jobs\n":
	default:
		if !strings.HasPrefix(lines[0], "JOB ID ") {
			t.Fatalf("table without its header:\n%s", stdout)
		}
		for _, l := range lines[1:] {
			ids = append(ids, strings.Fields(l)[0])
		}
	}
	return ids
}
