package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

// edit with a good file completes and saves the new PDF; with a broken one the
// job waits for the user and --wait exits 1 with the compile error; retry
// compiles it again; edit from standard input repairs it.
func TestEditAndRetry(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	id := completedJob(ctx, t, c)
	dir := t.TempDir()
	good, broken := filepath.Join(dir, "good.tex"), filepath.Join(dir, "broken.tex")
	for path, text := range map[string]string{good: goodLatex, broken: brokenLatex} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sheetctl := func(stdin string, args ...string) result {
		return runSheetctl(ctx, nil, stdin, dir, append([]string{"--server", s.ClientURL()}, args...)...)
	}

	r := sheetctl("", "edit", "--wait", id, good)
	pdf, err := os.ReadFile(filepath.Join(dir, id+".pdf"))
	if r.code != exitOK || !strings.Contains(r.stdout, " completed      done ") || err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("edit --wait good: exit %d (PDF: %v)\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "pending        design") {
		t.Fatalf("edit --wait replayed the job's first run:\n%s", r.stdout)
	}

	want := "sheetctl: job " + id + " waiting_manual at compile: "
	for _, args := range [][]string{{"edit", id, broken, "--wait"}, {"retry", "--wait", id}} {
		r = sheetctl("", args...)
		if r.code != exitFailure || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "(line 3)\n  ") ||
			!strings.Contains(r.stderr, "undefinedmacro") || !strings.Contains(r.stdout, " waiting_manual compile ") {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and %q ... (line 3) with the snippet",
				args, r.code, r.stdout, r.stderr, want)
		}
	}

	r = sheetctl(goodLatex, "--json", "edit", id, "-")
	var changed events.Versioned
	if err := json.Unmarshal([]byte(r.stdout), &changed); r.code != exitOK || err != nil || changed.ID != id || changed.Latex != goodLatex {
		t.Fatalf("edit --json from stdin: exit %d (%v)\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
	}
	if last := waitRun(ctx, t, c, id, changed.Revision); last.Status != events.StatusCompleted {
		t.Fatalf("job ended %s after the repair, want completed", last.Status)
	}

	r = sheetctl("", "retry", id)
	if r.code != exitState || r.stderr != "sheetctl: not allowed in this state: cannot retry job "+id+": it is completed at step done\n" {
		t.Fatalf("retry of a completed job: exit %d stderr %q, want 4", r.code, r.stderr)
	}
	unknown := uuid.NewString()
	r = sheetctl("", "edit", unknown, good)
	if r.code != exitUnknown || r.stderr != "sheetctl: unknown job: no job "+unknown+"\n" {
		t.Fatalf("edit of an unknown job: exit %d stderr %q, want 3", r.code, r.stderr)
	}
}

// refine --wait regenerates a completed job from the instruction and saves the
// new PDF.
func TestRefine(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	id := completedJob(ctx, t, c)
	before, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "refine", "--wait", id, "add", "three", "word", "problems")
	if r.code != exitOK || !strings.Contains(r.stdout, " completed      done ") || !strings.Contains(r.stdout, "PDF saved to "+filepath.Join(dir, id+".pdf")) {
		t.Fatalf("refine --wait: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	after, err := c.Get(ctx, id)
	if err != nil || !strings.Contains(after.RevisedPrompt, "add three word problems") || after.Revision <= before.Revision ||
		after.Status != events.StatusCompleted || after.PDFURL == "" {
		t.Fatalf("job after refine: %+v (%v), want it completed again from the revised request", after, err)
	}
	if pdf, err := os.ReadFile(filepath.Join(dir, id+".pdf")); err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("refine --wait saved no PDF: %v", err)
	}
	r = runSheetctl(ctx, nil, "", dir, "--server", s.ClientURL(), "refine", uuid.NewString(), "more")
	if r.code != exitUnknown {
		t.Fatalf("refine of an unknown job: exit %d stderr %q, want 3", r.code, r.stderr)
	}
}

// abort ends a job for good: a second abort and a retry are not allowed (exit 4)
// and watching the job exits 1 with its message.
func TestAbort(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	id := waitingManualJob(ctx, t, newTestClient(t, s))
	sheetctl := func(args ...string) result {
		return runSheetctl(ctx, nil, "", t.TempDir(), append([]string{"--server", s.ClientURL()}, args...)...)
	}

	r := sheetctl("abort", id)
	if r.code != exitOK || r.stdout != "job "+id+" aborted at compile: Aborted by the user\n" {
		t.Fatalf("abort: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sheetctl("watch", id)
	if r.code != exitFailure || r.stderr != "sheetctl: job "+id+" aborted at compile: Aborted by the user\n" {
		t.Fatalf("watch of an aborted job: exit %d stderr %q, want 1 and the job's message", r.code, r.stderr)
	}
	for _, args := range [][]string{{"abort", id}, {"--json", "retry", id}, {"refine", id, "more"}} {
		r = sheetctl(args...)
		if r.code != exitState || !strings.Contains(r.stderr, "it is aborted") || r.stdout != "" {
			t.Fatalf("%s: exit %d stdout %q stderr %q, want 4", args, r.code, r.stdout, r.stderr)
		}
	}
	r = sheetctl("abort", "--json", uuid.NewString())
	if r.code != exitUnknown {
		t.Fatalf("abort of an unknown job: exit %d stderr %q, want 3", r.code, r.stderr)
	}
}
