package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

// writeBatchFile writes lines to a file in a new directory and returns its path.
func writeBatchFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "batch.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBatchWaitReachesDone(t *testing.T) {
	s := startPipeline(t)
	c := newTestClient(t, s)
	ctx := testContext(t)
	env := map[string]string{"USER": "ada"}
	file := writeBatchFile(t,
		`{"user_id": "bob", "prompt": "fractions, grade 5"}`,
		``,
		`{"prompt": "decimals, grade 6", "mode": "manual"}`,
		`{"user_id": "bob", "prompt": "percentages, grade 7", "max_retries": 1}`)
	dir := t.TempDir()
	r := runSheetctl(ctx, env, "", dir, "--server", s.ClientURL(), "batch", "--wait", file)
	if r.code != exitOK {
		t.Fatalf("batch --wait: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var batchID string
	if _, err := fmt.Sscanf(lines[0], "batch %s submitted: 3 jobs", &batchID); err != nil {
		t.Fatalf("first line %q: %v", lines[0], err)
	}
	dated := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+[0-9.]+m?s +\d/3 ended: `)
	done := regexp.MustCompile(`^batch ` + batchID + ` done in [0-9.ms]+: completed 3; 3 PDFs saved to ` + regexp.QuoteMeta(dir) + `$`)
	if !dated.MatchString(lines[1]) || !strings.Contains(r.stdout, "3/3 ended: completed 3") || !done.MatchString(lines[len(lines)-1]) {
		t.Fatalf("progress:\n%s", r.stdout)
	}
	st, err := c.Batch(ctx, batchID)
	if err != nil || !st.Done || !maps.Equal(st.Counts, map[events.Status]int{events.StatusCompleted: 3}) {
		t.Fatalf("batch %s: %+v (%v)", batchID, st, err)
	}
	// batch --wait saved each job's PDF, as submit --wait does, a line each.
	for _, j := range st.Jobs {
		path := filepath.Join(dir, j.JobID+".pdf")
		pdf, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) || !strings.Contains(r.stdout, "saved "+path+" (") {
			t.Fatalf("PDF of job %s: %v\n%s", j.JobID, err, r.stdout)
		}
	}
	j, err := c.Get(ctx, st.Jobs[1].JobID)
	if err != nil || j.UserID != "ada" || j.Mode != events.ModeManual || j.Prompt != "decimals, grade 6" {
		t.Fatalf("the second line's job: %+v (%v), want ada's manual request", j, err)
	}

	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "batch", "get", batchID)
	if r.code != exitOK || !strings.Contains(r.stdout, "completed 3") || !strings.Contains(r.stdout, "done: every job has ended") ||
		!strings.Contains(r.stdout, st.Jobs[2].JobID+"  completed  done") {
		t.Fatalf("batch get: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "--json", "batch", "get", batchID)
	var got events.BatchStatus
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &got) != nil || got.BatchID != batchID || got.Counts[events.StatusCompleted] != 3 {
		t.Fatalf("batch get --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A job of the batch edited into LaTeX that does not compile: the batch is
	// done again, not all completed.
	ed, err := c.EditLatex(ctx, st.Jobs[0].JobID, brokenLatex)
	if err != nil {
		t.Fatal(err)
	}
	if last := waitRun(ctx, t, c, ed.ID, ed.Revision); last.Status != events.StatusWaitingManual {
		t.Fatalf("edited job ended %s", last.Status)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "batch", "watch", batchID)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not all completed: waiting_manual 1, completed 2") ||
		!strings.Contains(r.stderr, "job "+ed.ID+" waiting_manual at compile") {
		t.Fatalf("batch watch of a batch with a failed job: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestBatchRefusals(t *testing.T) {
	s := startPipeline(t)
	c := newTestClient(t, s)
	ctx := testContext(t)
	batchID := uuid.NewString()
	bad := writeBatchFile(t,
		`{"user_id": "bob", "prompt": "fractions, grade 5"}`,
		``,
		`{"user_id": "bob", "prompt": "decimals", "max_retries": 99}`)
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"bad line", "", []string{"batch", "--batch-id", batchID, bad}, exitUsage, "line 3: max_retries 99 is outside 0..10"},
		{"text on stdin", "fractions\n", []string{"batch", "--batch-id", batchID, "-"}, exitUsage, "standard input: line 1: not a JSON object"},
		{"empty file", "\n\n", []string{"batch", "--batch-id", batchID, "-"}, exitUsage, "a batch has 1..1000 jobs, this one 0"},
		{"missing file", "", []string{"batch", filepath.Join(t.TempDir(), "none.jsonl")}, exitFailure, "no such file"},
		{"bad batch id", "", []string{"batch", "--batch-id", "b1", bad}, exitUsage, `batch id "b1" is not a UUID`},
		{"get of a bad id", "", []string{"batch", "get", "b1"}, exitUsage, `batch id "b1" is not a UUID`},
		{"get of an unknown batch", "", []string{"batch", "get", batchID}, exitUnknown, "no batch " + batchID},
		{"watch of an unknown batch", "", []string{"batch", "watch", batchID}, exitUnknown, "no batch " + batchID},
		{"--wait with get", "", []string{"batch", "--wait", "get", batchID}, exitUsage, "--wait and --batch-id are for submitting"},
		{"no arguments", "", []string{"batch"}, exitUsage, "batch needs a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(ctx, nil, tc.stdin, t.TempDir(), append([]string{"--server", s.ClientURL()}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, tc.stderr, r.stdout, r.stderr)
			}
		})
	}
	if _, err := c.Batch(ctx, batchID); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("a refused batch was submitted: %v", err)
	}

	// Sent twice with its --batch-id, a batch is the same jobs; other jobs under
	// that id are refused.
	good := writeBatchFile(t, `{"user_id": "bob", "prompt": "fractions, grade 5"}`, `{"user_id": "bob", "prompt": "decimals"}`)
	first := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "--json", "batch", "--batch-id", batchID, good)
	again := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "batch", "--batch-id", batchID, good)
	var reply events.BatchReply
	if first.code != exitOK || json.Unmarshal([]byte(first.stdout), &reply) != nil || len(reply.JobIDs) != 2 ||
		again.code != exitOK || again.stdout != batchID+"\n"+strings.Join(reply.JobIDs, "\n")+"\n" {
		t.Fatalf("batch sent twice:\n%s%s\n%s%s", first.stdout, first.stderr, again.stdout, again.stderr)
	}
	other := writeBatchFile(t, `{"user_id": "bob", "prompt": "percentages"}`)
	if r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "batch", "--batch-id", batchID, other); r.code != exitState ||
		!strings.Contains(r.stderr, "different jobs") {
		t.Fatalf("other jobs under the batch id: exit %d\n%s", r.code, r.stderr)
	}
}
