package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// runWithHook is runSheetctl with the app's beforeChange hook.
func runWithHook(ctx context.Context, dir string, hook func(), args ...string) result {
	var out, errOut syncBuffer
	a := &app{stdio: stdio{in: strings.NewReader(""), out: &out, err: &errOut, dir: dir,
		getenv: func(string) string { return "" }}, progressEvery: progressEvery, beforeChange: hook}
	code := a.run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// An edit racing another change of the job is refused: sheetctl read the job's
// revision, the job changed before the edit reached the service, and the edit
// exits 4 saying so and what to do, leaving the other change in place. --force
// skips the check; --revision bases any change on a revision given.
func TestEditRacingAChange(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	id := completedJob(ctx, t, c)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tex")
	if err := os.WriteFile(good, []byte(goodLatex), 0o600); err != nil {
		t.Fatal(err)
	}
	server := []string{"--server", s.ClientURL()}

	var read, other *events.Versioned
	r := runWithHook(ctx, dir, func() {
		var err error
		if read, err = c.Get(ctx, id); err != nil {
			t.Error(err)
		}
		if other, err = c.EditLatex(ctx, id, brokenLatex); err != nil {
			t.Errorf("the concurrent edit: %v", err)
		}
	}, append(server, "edit", id, good)...)
	if read == nil || other == nil {
		t.Fatalf("edit did not read the job before sending (or the concurrent edit failed): exit %d stderr %q", r.code, r.stderr)
	}
	want := fmt.Sprintf("sheetctl: cannot edit the LaTeX of job %s: it changed since it was read (revision %d) and is at revision ", id, read.Revision)
	if r.code != exitState || r.stdout != "" || !strings.HasPrefix(r.stderr, want) ||
		!strings.Contains(r.stderr, "\n  Read it again (sheetctl get --latex "+id+") and edit that, or pass --force") {
		t.Fatalf("edit racing a change: exit %d\nstdout: %q\nstderr: %q\nwant exit 4 and %q...", r.code, r.stdout, r.stderr, want)
	}
	if last := waitRun(ctx, t, c, id, other.Revision); last.Status != events.StatusWaitingManual {
		t.Fatalf("the concurrent edit ended %s, want waiting_manual", last.Status)
	}
	j, err := c.Get(ctx, id)
	if err != nil || j.Latex != brokenLatex {
		t.Fatalf("the refused edit replaced the LaTeX (%v): %q", err, j.Latex)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"retry", "--revision", fmt.Sprint(read.Revision), id}, exitState,
			fmt.Sprintf("sheetctl: cannot retry job %s: it changed since revision %d and is at revision %d now; nothing was changed.\n  Read it again (sheetctl get %s) and decide again.\n", id, read.Revision, j.Revision, id)},
		{[]string{"abort", id, "--revision", fmt.Sprint(read.Revision)}, exitState, "it changed since revision"},
		{[]string{"refine", "--revision", fmt.Sprint(read.Revision), id, "harder"}, exitState, "it changed since revision"},
		{[]string{"edit", "--revision", fmt.Sprint(read.Revision), id, good}, exitState, "it changed since revision"},
		{[]string{"edit", "--revision", "0", id, good}, exitUsage, "not a revision"},
		{[]string{"retry", "--revision", "latest", id}, exitUsage, "not a revision"},
		{[]string{"edit", "--force", "--revision", "3", id, good}, exitUsage, "--force and --revision exclude each other"},
	} {
		r := runSheetctl(ctx, nil, "", dir, append(server, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Fatalf("%s: exit %d stderr %q, want %d with %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
	}
	if after, err := c.Get(ctx, id); err != nil || after.Revision != j.Revision {
		t.Fatalf("refused changes wrote the job: revision %d -> %d (%v)", j.Revision, after.Revision, err)
	}

	// --force replaces the LaTeX whatever changed; --revision of the current
	// revision works.
	r = runWithHook(ctx, dir, func() { t.Error("--force read the job") }, append(server, "edit", "--force", id, good)...)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "job "+id+" pending at compile") {
		t.Fatalf("edit --force: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	forced, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if last := waitRun(ctx, t, c, id, forced.Revision); last.Status != events.StatusCompleted {
		t.Fatalf("forced edit ended %s", last.Status)
	}
	deadline := time.Now().Add(time.Minute)
	for forced.Description == "" || forced.MetaSeq != forced.LatexSeq {
		if time.Now().After(deadline) {
			t.Fatal("the forced edit was never described")
		}
		time.Sleep(20 * time.Millisecond)
		if forced, err = c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The pipeline may still write the job without a change of state (the meta
	// stage, whose writes count against if_revision too: RELIABILITY.md), so a
	// refusal naming a newer revision is read again and tried once more.
	for try := 0; ; try++ {
		r = runSheetctl(ctx, nil, "", dir, append(server, "refine", "--revision", fmt.Sprint(forced.Revision), id, "harder")...)
		if r.code != exitState || try == 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
		if forced, err = c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "job "+id+" pending at design") {
		t.Fatalf("refine --revision of the current revision: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
