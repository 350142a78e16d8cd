package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestRunScriptTwice runs scripts/run.sh (what make run runs) as a newcomer
// would, in a copy of the repository's layout with freshly built binaries and
// the offline provider: the first run writes a PDF, keeps serving and prints the
// next commands and how to put bin/ on PATH. A second run on the same ports, and
// a third on the same data dir with other ports, stop at once naming the first
// sheetd's pid; the first keeps serving and its log is only ever appended to.
func TestRunScriptTwice(t *testing.T) {
	for _, tool := range []string{"curl", "pdflatex", "bwrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	root := t.TempDir()
	for _, dir := range []string{"scripts", "bin"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("../../scripts/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "scripts", "run.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sheetdBinary(t), filepath.Join(root, "bin", "sheetd")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(root, "bin", "sheetctl"), "../sheetctl").CombinedOutput(); err != nil {
		t.Fatalf("build sheetctl: %v\n%s", err, out)
	}
	httpAddr := testnats.FreeAddr(t)
	env := []string{"SHEETPIPE_HTTP_ADDR=" + httpAddr, "SHEETPIPE_NATS_LISTEN=" + testnats.FreeAddr(t),
		"PROMPT=Addition, 5 exercises"}
	run := filepath.Join(root, "scripts", "run.sh")

	first := startCommand(t, "first run.sh", run, env)
	waitOutput(t, first, "Ctrl-C here stops sheetd.", 3*time.Minute)
	out := first.stdout.String()
	for _, want := range []string{`export PATH="` + root + `/bin:$PATH"`, `sheetctl submit --wait "`, "sheetctl list"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, out)
		}
	}
	if pdfs, _ := filepath.Glob(filepath.Join(root, "*.pdf")); len(pdfs) != 1 {
		t.Errorf("PDFs written by the first run: %q, want one", pdfs)
	}
	lock, err := os.ReadFile(filepath.Join(root, "data", service.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(lock))
	logPath := filepath.Join(root, "data", "sheetd.log")
	before, err := os.ReadFile(logPath)
	if err != nil || len(before) == 0 {
		t.Fatalf("first sheetd's log: %v (%d bytes)", err, len(before))
	}

	again := []struct {
		name string
		env  []string
		want []string
	}{
		{"same ports", env, []string{"already answers on http://" + httpAddr, "pid " + pid, "SHEETPIPE_DATA_DIR"}},
		{"same data dir", []string{"SHEETPIPE_HTTP_ADDR=" + testnats.FreeAddr(t), "SHEETPIPE_NATS_LISTEN=" + testnats.FreeAddr(t)},
			[]string{"exited", "pid " + pid, "SHEETPIPE_DATA_DIR"}},
	}
	for _, tc := range again {
		p := startCommand(t, tc.name+" run.sh", run, tc.env)
		if code := p.wait(30 * time.Second); code == 0 {
			t.Errorf("%s: the second run.sh exited 0", tc.name)
		}
		msg := p.stdout.String() + p.stderr.String()
		for _, want := range tc.want {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the second run.sh's output lacks %q:\n%s", tc.name, want, msg)
			}
		}
		if strings.Contains(msg, "sheetd is running") {
			t.Errorf("%s: the second run.sh says sheetd is running:\n%s", tc.name, msg)
		}
	}

	after, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(after, before) || bytes.IndexByte(after, 0) >= 0 {
		t.Errorf("the first sheetd's log was rewritten (%d bytes before, %d after, NUL bytes: %v)",
			len(before), len(after), bytes.IndexByte(after, 0) >= 0)
	}
	if resp, err := http.Get("http://" + httpAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the first sheetd is not ready after the second runs: %v", err)
	} else {
		resp.Body.Close()
	}
	first.signal(syscall.SIGTERM)
	first.wait(60 * time.Second)
	if _, err := os.Stat(fmt.Sprintf("/proc/%s", pid)); err == nil {
		t.Errorf("sheetd (pid %s) still runs after run.sh was stopped", pid)
	}
}

// waitOutput waits up to d for p's stdout to contain want.
func waitOutput(t *testing.T, p *process, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stdout.String(), want) {
		if code, ok := p.exited(); ok {
			t.Fatalf("%s exited with %d before printing %q\n%s\n%s", p.name, code, want, p.stdout.String(), p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s\n%s\n%s", p.name, want, d, p.stdout.String(), p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
