package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildSheetctlWith builds the command with linker flags into a temporary
// directory.
func buildSheetctlWith(t *testing.T, ldflags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sheetctl")
	cmd := exec.CommandContext(testContext(t), "go", "build", "-ldflags", ldflags, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// --version prints the version and revision the build set, and the Go version.
func TestBinaryVersion(t *testing.T) {
	bin := buildSheetctlWith(t, "-X github.com/sheetpipe/sheetpipe/internal/buildinfo.version=v9.8.7 -X github.com/sheetpipe/sheetpipe/internal/buildinfo.revision=0123abc")
	r := runBinary(testContext(t), t, bin, t.TempDir(), nil, "--version")
	want := "sheetctl v9.8.7 (revision 0123abc, " + runtime.Version() + ")\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q, want 0 and %q", r.code, r.stdout, r.stderr, want)
	}
}

// Without build-time values the version comes from the build information.
func TestVersionTextWithoutLdflags(t *testing.T) {
	got := versionText()
	if !strings.HasPrefix(got, "sheetctl ") || !strings.Contains(got, "(revision ") || !strings.HasSuffix(got, runtime.Version()+")") {
		t.Fatalf("versionText() = %q", got)
	}
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "--version")
	if r.code != exitOK || r.stdout != got+"\n" {
		t.Fatalf("--version: exit %d stdout %q, want %q", r.code, r.stdout, got)
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // each a substring of stdout
		stderr string
	}{
		{"bash", []string{"completion", "bash"}, exitOK, []string{"# bash completion V2 for sheetctl", "__start_sheetctl"}, ""},
		{"zsh", []string{"completion", "zsh"}, exitOK, []string{"#compdef sheetctl"}, ""},
		{"fish", []string{"completion", "fish"}, exitOK, []string{"complete -c sheetctl"}, ""},
		{"unknown shell", []string{"completion", "tcsh"}, exitUsage, nil, `sheetctl: completion: unknown shell "tcsh"`},
		{"no shell", []string{"completion"}, exitUsage, nil, "sheetctl: completion: missing shell"},
		// What the scripts ask: the commands, a command's flags and their values.
		{"commands", []string{"__complete", ""}, exitOK, []string{"\nsubmit\t", "\nwatch\t", "\nimport\t", "\ncompletion\t"}, ""},
		{"flags", []string{"__complete", "submit", "--pri"}, exitOK, []string{"--priority\t"}, ""},
		{"flag values", []string{"__complete", "submit", "--priority", ""}, exitOK, []string{"high\nnormal\nlow\n"}, ""},
		{"list status values", []string{"__complete", "list", "--status", "wait"}, exitOK, []string{"waiting_manual\n"}, ""},
		{"help topics", []string{"__complete", "help", ""}, exitOK, []string{"submit\n", "completion\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(testContext(t), nil, "", t.TempDir(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains("\n"+r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
		})
	}
}

// Help and errors spell flags --flag.
func TestHelpSpellsFlagsWithTwoDashes(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "submit"}, {"help", "pdf"}, {"list", "-h"}} {
		r := runSheetctl(testContext(t), nil, "", t.TempDir(), args...)
		for _, l := range strings.Split(r.stdout, "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasPrefix(f[0], "-") && !strings.HasPrefix(f[0], "--") && !strings.HasSuffix(f[0], ",") {
				t.Errorf("sheetctl %s: flag line %q", strings.Join(args, " "), l)
			}
		}
	}
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "list", "--limit", "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, `invalid argument "x" for "--limit" flag`) {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}
