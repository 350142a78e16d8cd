package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// These tests run the built sheetctl binary as a user would: real arguments,
// environment, working directory and exit status.

// buildSheetctl builds the command into a temporary directory.
func buildSheetctl(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sheetctl")
	cmd := exec.CommandContext(testContext(t), goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs bin in dir with only the given environment (plus PATH and HOME).
func runBinary(ctx context.Context, t *testing.T, bin, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run sheetctl: %v", err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestBinaryJobLifecycle(t *testing.T) {
	s := startPipeline(t)
	bin := buildSheetctl(t)
	dir := t.TempDir()
	r := runBinary(testContext(t), t, bin, dir, []string{"NATS_URL=" + s.ClientURL(), "USER=ada"},
		"submit", "--wait", "--timeout", "90s", prompt)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	m := regexp.MustCompile(`^job ([0-9a-f-]{36}) submitted$`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("first line %q, want \"job <id> submitted\"", lines[0])
	}
	id := m[1]
	// Each status line is "YYYY-MM-DD HH:MM:SS status step +elapsed message"; the
	// statuses must follow the pipeline's order.
	eventLine := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) +(\S+) +\+\d`)
	var seen []string
	for _, l := range lines[1 : len(lines)-1] {
		if f := eventLine.FindStringSubmatch(l); f != nil {
			seen = append(seen, f[1]+"@"+f[2])
		}
	}
	order := []string{"pending@design", "running@design", "running@latex", "running@compile", "completed@done"}
	next := 0
	for _, st := range seen {
		if next < len(order) && st == order[next] {
			next++
		}
	}
	if next != len(order) {
		t.Fatalf("status lines %v do not contain %v in order\nstdout:\n%s", seen, order, r.stdout)
	}
	path := filepath.Join(dir, id+".pdf")
	pdf, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("read %s: %v (starts %q)", path, err, pdf[:min(len(pdf), 8)])
	}
	if want := regexp.MustCompile(`^completed in [0-9.]+m?s: PDF saved to ` + regexp.QuoteMeta(path) + ` \(\d+ bytes\)$`); !want.MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q, want %q", lines[len(lines)-1], want)
	}

	// The job's other commands, with their exit status.
	env := []string{"NATS_URL=" + s.ClientURL()}
	unknown := uuid.NewString()
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // exact
	}{
		{[]string{"get", id}, 0, "status    completed at done (revision ", ""},
		{[]string{"list", "--json"}, 0, `{"job_id":"` + id + `"`, ""},
		{[]string{"get", unknown}, 3, "", "sheetctl: unknown job: no job " + unknown + "\n"},
		{[]string{"retry", id}, 4, "", "sheetctl: not allowed in this state: cannot retry job " + id + ": it is completed at step done\n"},
	} {
		r := runBinary(testContext(t), t, bin, dir, env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || r.stderr != tc.stderr {
			t.Errorf("sheetctl %s: exit %d\nstdout:\n%s\nstderr: %q\nwant exit %d, stdout with %q, stderr %q",
				strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestBinarySubmitPrintsJobID(t *testing.T) {
	s := startPipeline(t)
	bin := buildSheetctl(t)
	r := runBinary(testContext(t), t, bin, t.TempDir(), nil, "--server", s.ClientURL(), "submit", prompt)
	id := strings.TrimSuffix(r.stdout, "\n")
	if u, err := uuid.Parse(id); r.code != 0 || err != nil || u.Version() != 4 {
		t.Fatalf("exit %d stdout %q stderr %q, want 0 and a UUIDv4", r.code, r.stdout, r.stderr)
	}
}

func TestBinaryFailures(t *testing.T) {
	bin := buildSheetctl(t)
	url := closedURL(t)
	bare := testnats.Start(t).ClientURL() // a server where no sheetd runs
	id := uuid.NewString()
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"no server", []string{"NATS_URL=" + url}, []string{"submit", prompt}, 1,
			"sheetctl: connect to " + url + ": no servers available (is sheetd running?)\n"},
		{"no server for watch", nil, []string{"--server", url, "watch", uuid.NewString()}, 1,
			"sheetctl: connect to " + url + ": no servers available (is sheetd running?)\n"},
		{"no service", []string{"NATS_URL=" + bare}, []string{"get", id}, 1,
			"sheetctl: get job " + id + ": no sheetd answers sheetpipe.get on this server; is sheetd running?\n"},
		{"no service for submit", []string{"NATS_URL=" + bare}, []string{"submit", prompt}, 1, "sheetctl: submit job "},
		{"unknown command", nil, []string{"frobnicate"}, 2, `sheetctl: unknown command "frobnicate"`},
		{"missing argument", nil, []string{"submit"}, 2, "sheetctl: submit: missing prompt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBinary(testContext(t), t, bin, t.TempDir(), tc.env, tc.args...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}
