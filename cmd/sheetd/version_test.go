package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// stampedSheetd builds sheetd as the Makefile's build target does, with the
// version and revision set at link time.
func stampedSheetd(t *testing.T, version, revision string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sheetd")
	const pkg = "github.com/sheetpipe/sheetpipe/internal/buildinfo"
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ldflags := fmt.Sprintf("-X %s.version=%s -X %s.revision=%s", pkg, version, pkg, revision)
	if out, err := exec.CommandContext(ctx, "go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersionFlag: `sheetd --version` and `sheetd -version` print the version
// and revision set at link time and the Go version, and exit 0 without starting
// anything; a plain build prints what the toolchain recorded ("devel" at least).
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	bin := stampedSheetd(t, "v9.8.7-3-gabc1234-dirty", "abc1234def")
	want := "sheetd v9.8.7-3-gabc1234-dirty (revision abc1234def, " + runtime.Version() + ")\n"
	for _, flag := range []string{"--version", "-version"} {
		p := startCommand(t, "sheetd "+flag, bin, nil, flag)
		if code := p.wait(30 * time.Second); code != 0 || p.stdout.String() != want {
			t.Fatalf("sheetd %s: exit %d, stdout %q, want 0 and %q (stderr %s)", flag, code, p.stdout.String(), want, p.stderr.String())
		}
	}
	p := startCommand(t, "plain sheetd --version", sheetdBinary(t), nil, "--version")
	if code := p.wait(30 * time.Second); code != 0 || !strings.HasPrefix(p.stdout.String(), "sheetd ") || !strings.Contains(p.stdout.String(), runtime.Version()) {
		t.Fatalf("plain build: exit %d, stdout %q", code, p.stdout.String())
	}
}

// TestBuildInfoMetric: a running sheetd's /metrics has
// sheetpipe_build_info{goversion,revision,version} 1 for its build.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	bin := stampedSheetd(t, "v1.2.3", "0123456789abcdef")
	s := newSetup(t, fakellm.Script(fakellm.Reply{Content: "unused"}))
	p := startCommand(t, "sheetd", bin, s.env())
	p.waitReady("http://" + s.httpAddr + "/readyz")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := `sheetpipe_build_info{goversion="` + runtime.Version() + `",revision="0123456789abcdef",version="v1.2.3"} 1`
	if !strings.Contains(string(body), want+"\n") {
		t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(string(body), "build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
