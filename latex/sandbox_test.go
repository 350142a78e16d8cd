package latex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// passwdMarkers returns, for every account in /etc/passwd, its line and its
// first three fields ("list:x:38"), which pdfTeX's map-file warnings would quote.
func passwdMarkers(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skipf("no /etc/passwd: %v", err)
	}
	var markers []string
	for _, line := range strings.Split(string(b), "\n") {
		if fields := strings.Split(line, ":"); len(fields) >= 3 {
			markers = append(markers, line, strings.Join(fields[:3], ":"))
		}
	}
	if len(markers) == 0 {
		t.Skip("/etc/passwd is empty")
	}
	return markers
}

func TestCompileCannotReadOutsideWorkDir(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	markers := append(passwdMarkers(t), "root:x:0:0")
	tests := []struct {
		name        string
		body        string
		wantSandbox bool // the recorder check must catch it
	}{
		{name: "input absolute", body: `\input{/etc/passwd}`},
		{name: "input relative", body: `\input{../../../../etc/passwd}`},
		{name: "primitive input", body: "\\makeatletter\\@@input /etc/passwd \\relax"},
		{name: "openin and read", body: "\\newread\\r\\immediate\\openin\\r=/etc/passwd\n" +
			"\\ifeof\\r closed\\else\\read\\r to\\x \\message{\\x}\\x\\fi"},
		// /etc/passwd does not exist in the jail; these read it on the host
		// without one.
		{name: "pdfobj file", body: "\\pdfcompresslevel=0\\immediate\\pdfobj file {/etc/passwd}\n" +
			"\\pdfcatalog{/X \\the\\pdflastobj\\space 0 R}hello"},
		{name: "pdfobj stream file", body: "\\immediate\\pdfobj stream file {../../../../etc/passwd}\n" +
			"\\pdfcatalog{/X \\the\\pdflastobj\\space 0 R}hello"},
		{name: "pdfmapfile then an error", body: "\\pdfmapfile{+/etc/passwd}hello\\newpage\\foo"},
		// The recorder check, second line behind the jail, catches a read of a
		// file that exists in the jail outside the work dir and the TeX trees.
		{name: "pdfobj file of a jail file", body: "\\pdfcompresslevel=0\\immediate\\pdfobj file {/proc/self/status}\n" +
			"\\pdfcatalog{/X \\the\\pdflastobj\\space 0 R}hello", wantSandbox: true},
		{name: "pdfobj stream file of a jail file", body: "\\immediate\\pdfobj stream file {../proc/version}\n" +
			"\\pdfcatalog{/X \\the\\pdflastobj\\space 0 R}hello", wantSandbox: true},
		{name: "pdfmapfile of a jail file then an error", body: "\\pdfmapfile{+/proc/version}hello\\newpage\\foo",
			wantSandbox: true},
		{name: "writing the recorder file", body: "\\newwrite\\f\\immediate\\openout\\f=main.fls\n" +
			"\\immediate\\write\\f{PWD .}\\immediate\\closeout\\f hello", wantSandbox: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source := "\\documentclass{article}\n\\begin{document}\n" + tt.body + "\n\\end{document}\n"
			pdf, err := c.Compile(t.Context(), source)
			outputs := map[string]string{"pdf": string(pdf)}
			if err != nil {
				le := requireLatexError(t, err)
				outputs["log"], outputs["snippet"], outputs["message"] = le.Log, le.Snippet, le.Message
			}
			for what, out := range outputs {
				for _, m := range markers {
					requireNotContains(t, out, m, what)
				}
			}
			if tt.wantSandbox {
				requireEqual(t, errors.Is(err, ErrSandbox), true, "errors.Is ErrSandbox ("+errString(err)+")")
				requireEqual(t, pdf == nil, true, "pdf is nil")
			}
			requireEmptyDir(t, tmp)
		})
	}
}

func TestCompileCannotRunOrWriteOutside(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	target := filepath.Join(t.TempDir(), "pwned")
	escape := fmt.Sprintf("sheetpipe-latex-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	tests := []struct {
		name    string
		body    string
		created string // must not exist afterwards
		wantPDF bool
	}{
		{name: "immediate write18", body: `\immediate\write18{touch ` + target + `1}hello`, created: target + "1", wantPDF: true},
		{name: "write18 in a shipped page", body: `\write18{touch ` + target + `2}hello`, created: target + "2", wantPDF: true},
		{name: "openout absolute", body: "\\newwrite\\f\\immediate\\openout\\f=/tmp/" + escape + ".tex\n" +
			"\\immediate\\write\\f{x}\\immediate\\closeout\\f", created: "/tmp/" + escape + ".tex"},
		{name: "openout relative", body: "\\newwrite\\f\\immediate\\openout\\f=../" + escape + ".tex\n" +
			"\\immediate\\write\\f{x}\\immediate\\closeout\\f", created: filepath.Join(tmp, escape+".tex")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { _ = os.Remove(tt.created) })
			source := "\\documentclass{article}\n\\begin{document}\n" + tt.body + "\n\\end{document}\n"
			pdf, err := c.Compile(t.Context(), source)
			if tt.wantPDF && err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if !tt.wantPDF {
				requireLatexError(t, err)
				requireEqual(t, pdf == nil, true, "pdf is nil")
			}
			_, statErr := os.Stat(tt.created)
			requireEqual(t, errors.Is(statErr, os.ErrNotExist), true, tt.created+" does not exist")
			requireEmptyDir(t, tmp)
		})
	}
}

func TestCompileFileSizeLimit(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	c.fileMax = 1 << 20
	flood := "\\def\\y{\\message{" + strings.Repeat("x", 100) + "}\\y}\\y"
	_, err := c.Compile(t.Context(), "\\documentclass{article}\n\\begin{document}\n"+flood+"\n\\end{document}\n")
	le := requireLatexError(t, err)
	requireContains(t, le.Message, "file size limit (1 MiB)", "message")
	requireEqual(t, le.Log, "", "log of a killed run")
	requireEmptyDir(t, tmp)
}

// endlessLoop is a document that never ends; marker, in a comment, tells its
// processes apart from any other pdflatex on the machine.
func endlessLoop(marker string) string {
	return "% " + marker + "\n\\documentclass{article}\n\\begin{document}\n\\def\\x{\\x}\\x\n\\end{document}\n"
}

func newMarker(t *testing.T) string {
	return fmt.Sprintf("sheetpipe-test-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), t.Name())
}

func TestCompileTimeoutKillsCompiler(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{Timeout: 2 * time.Second})
	marker := newMarker(t)
	start := time.Now()
	done := compileAsync(t.Context(), c, endlessLoop(marker))
	waitForCompiler(t, marker, 10*time.Second)
	err := waitDone(t, done, 10*time.Second)
	if elapsed := time.Since(start); elapsed > 7*time.Second {
		t.Fatalf("Compile took %s with a 2s timeout", elapsed)
	}
	le := requireLatexError(t, err)
	requireEqual(t, errors.Is(err, ErrTimeout), true, "errors.Is ErrTimeout")
	requireEqual(t, le.Message, "compilation timed out after 2s", "message")
	requireCompilerGone(t, marker)
	requireEmptyDir(t, tmp)
}

func TestCompileCancelKillsCompiler(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	marker := newMarker(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := compileAsync(ctx, c, endlessLoop(marker))
	waitForCompiler(t, marker, 10*time.Second)
	cancel()
	err := waitDone(t, done, 5*time.Second)
	requireEqual(t, errors.Is(err, context.Canceled), true, "errors.Is context.Canceled ("+errString(err)+")")
	var le *LatexError
	requireEqual(t, errors.As(err, &le), false, "is a *LatexError")
	requireCompilerGone(t, marker)
	requireEmptyDir(t, tmp)
}

func compileAsync(ctx context.Context, c *Compiler, source string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Compile(ctx, source)
		done <- err
	}()
	return done
}

func waitDone(t *testing.T, done <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Compile did not return within %s", timeout)
		return nil
	}
}

// markedProcesses returns the pids and names of the processes, in or out of a
// jail, whose working directory holds a main.tex containing marker: pdflatex
// and, in the jail, the wrapper and bwrap's init.
func markedProcesses(t *testing.T, marker string) map[int]string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		src, err := os.ReadFile(fmt.Sprintf("/proc/%d/cwd/main.tex", pid))
		if err != nil || !strings.Contains(string(src), marker) {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		found[pid] = strings.TrimSpace(string(comm))
	}
	return found
}

// waitForCompiler waits until a pdflatex compiles the document with marker.
func waitForCompiler(t *testing.T, marker string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, comm := range markedProcesses(t, marker) {
			if comm == "pdflatex" {
				return
			}
		}
	}
	t.Fatalf("no pdflatex compiling %s within %s", marker, timeout)
}

// requireCompilerGone waits at most 2s for every process of the document with
// marker to be gone (a SIGKILL takes effect asynchronously).
func requireCompilerGone(t *testing.T, marker string) {
	t.Helper()
	var left map[int]string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = markedProcesses(t, marker); len(left) == 0 {
			return
		}
	}
	t.Fatalf("compiler processes still running 2s later: %v", left)
}
