// Package docs holds sheetpipe's reference pages; its tests check that every
// shell block of README.md and docs/*.md is either run against a real sheetd or
// explicitly marked as not runnable.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The markers a shell block's fence carries after its language (```sh tour):
//   - tour: run in order, in one shell, by TestTour; every command must succeed.
//   - tour-background: started in the background (a second terminal) where it
//     stands in the file; it must print something within 20 s (it is ready) and
//     still be running when the last block has run.
//   - norun: never run (installs, make run itself, Docker): the line before the
//     fence must say why, as an HTML comment "<!-- norun: why -->" (not shown
//     on GitHub), and TestDocBlocksMarked fails without it.
const (
	markTour       = "tour"
	markBackground = "tour-background"
	markNoRun      = "norun"
)

// shellLanguages are the fence languages whose blocks a reader would paste into
// a shell: each needs a marker.
var shellLanguages = []string{"sh", "bash", "shell", "console", "zsh"}

// block is one fenced code block of a Markdown file.
type block struct {
	file   string // relative to the repository root
	line   int    // of the opening fence
	lang   string // the fence's first word ("" when it has none)
	marker string // its second word
	why    string // of a norun block: the reason in the comment before the fence
	text   string
}

// norunWhy matches the comment that must stand before a norun block's fence.
var norunWhy = regexp.MustCompile(`^<!-- norun: (.+) -->$`)

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docFiles are the Markdown files whose commands are checked: README.md and
// docs/*.md, in that order.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	out := []string{"README.md"}
	for _, f := range files {
		out = append(out, filepath.Join("docs", f))
	}
	return out
}

// readBlocks returns the fenced blocks of file (a path relative to the
// repository root).
func readBlocks(t *testing.T, file string) []block {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []block
		cur    *block
		body   []string
		prev   string // the last line before this one that is not blank
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				cur.text = strings.Join(body, "\n") + "\n"
				blocks = append(blocks, *cur)
				cur, body = nil, nil
				continue
			}
			body = append(body, line)
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimLeft(line, " "), "```"); ok {
			b := block{file: file, line: n}
			if m := norunWhy.FindStringSubmatch(prev); m != nil {
				b.why = m[1]
			}
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				b.lang = fields[0]
			}
			if len(fields) > 1 {
				b.marker = fields[1]
			}
			cur = &b
		}
		if strings.TrimSpace(line) != "" {
			prev = strings.TrimSpace(line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s: the fence opened here is never closed", cur)
	}
	return blocks
}

// TestDocBlocksMarked fails on a shell block of README.md or docs/*.md that is
// neither run by TestTour nor marked norun, and on a fence without a language,
// so that no command escapes the tour's test unnoticed.
func TestDocBlocksMarked(t *testing.T) {
	for _, file := range docFiles(t) {
		for _, b := range readBlocks(t, file) {
			shell := slices.Contains(shellLanguages, b.lang)
			switch {
			case b.lang == "":
				t.Errorf("%s: a fence without a language: say what it holds (```text, ```json, ```sh tour, ...)", b)
			case shell && !slices.Contains([]string{markTour, markBackground, markNoRun}, b.marker):
				t.Errorf("%s: a ```%s block without a marker: add %q (run by TestTour), %q or %q (not runnable) after the language",
					b, b.lang, markTour, markBackground, markNoRun)
			case b.marker == markNoRun && b.why == "":
				t.Errorf("%s: a norun block without its reason: put \"<!-- norun: why it cannot run in TestTour -->\" on the line before the fence, or make it run (tour)", b)
			case !shell && b.marker != "" && b.marker != markNoRun:
				t.Errorf("%s: marker %q on a ```%s block: only shell blocks (%s) run", b, b.marker, b.lang, strings.Join(shellLanguages, ", "))
			}
		}
	}
}

// TestTour runs the runnable shell blocks of README.md and docs/*.md in order,
// in one bash with -euo pipefail, in an empty directory, against a real sheetd
// built from this tree and started there with its defaults, as make run does
// (embedded NATS on 127.0.0.1:4222, HTTP on 127.0.0.1:8080, the offline
// provider, real pdflatex): both run in a network namespace of their own, so
// those addresses are free whatever else runs on the machine. bin/ holds
// sheetd, sheetctl and nats and is on PATH only once a block puts it there, as
// in a reader's shell. Each command must exit 0; each background block must be
// ready before the next block runs and still run at the end.
func TestTour(t *testing.T) {
	var run []block
	usesNats := false
	for _, file := range docFiles(t) {
		for _, b := range readBlocks(t, file) {
			if b.marker == markTour || b.marker == markBackground {
				run = append(run, b)
				usesNats = usesNats || strings.Contains(b.text, "nats ")
			}
		}
	}
	if len(run) == 0 {
		t.Fatal("no block is marked tour: the README's tour is gone")
	}
	// What the tour and its commands need; make test installs each (make
	// tour-tools, texlive, bubblewrap, nats). Never a skip: a machine without
	// them would pass without having run a single command of the docs.
	for _, tool := range []struct{ name, from string }{
		{"bash", "Debian package bash"}, {"curl", "Debian package curl"}, {"ip", "Debian package iproute2"},
		{"unshare", "Debian package util-linux"}, {"jq", "Debian package jq"}, {"openssl", "Debian package openssl"},
		{"pdflatex", "make texlive"}, {"bwrap", "Debian package bubblewrap"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("the tour needs %s, which is not on PATH: run make test, which installs it (%s)", tool.name, tool.from)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/sheetd", "./cmd/sheetctl")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sheetd and sheetctl: %v\n%s", err, out)
	}
	if usesNats {
		nats, err := filepath.Abs("../bin/nats")
		if err == nil {
			_, err = os.Stat(nats)
		}
		if err != nil {
			if nats, err = exec.LookPath("nats"); err != nil {
				t.Fatal("the tour uses nats, which is neither in bin/ nor on PATH: run make nats")
			}
		}
		if err := os.Symlink(nats, filepath.Join(bin, "nats")); err != nil {
			t.Fatal(err)
		}
	}

	// The tour runs from a clone: operations.md's sheetd with users reads the
	// clone's deploy/nats/auth.conf.
	conf, err := os.ReadFile("../deploy/nats/auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "deploy", "nats"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", "nats", "auth.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}

	if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
		t.Fatalf("the tour runs sheetd on its default addresses in a network namespace of its own, "+
			"and unshare -rn fails here (%v): run the tests as root or allow user namespaces", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tour.sh"), []byte(tourScript(run)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "namespace.sh"), []byte(namespaceScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "unshare", "-rn", "bash", "namespace.sh")
	cmd.Dir = dir
	cmd.Env = cleanEnv(dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever a block left behind
	if err != nil {
		sheetdLog, _ := os.ReadFile(filepath.Join(dir, "sheetd.log"))
		t.Fatalf("the tour failed (%v); its output, each command after + as bash -x shows it:\n%s\nsheetd's log:\n%s",
			err, out.String(), sheetdLog)
	}
	t.Logf("the tour's output:\n%s", out.String())
	// The README's subscriber, started before anything was submitted, and
	// cli.md's sheetctl watch of every job saw jobs complete.
	for i, b := range run {
		var want string
		switch {
		case b.marker != markBackground:
			continue
		case strings.Contains(b.text, "nats sub jobs.status"):
			want = `"status":"completed"`
		case strings.HasPrefix(strings.TrimSpace(b.text), "sheetctl watch "):
			want = " completed "
		default:
			continue
		}
		log, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("background-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), want) {
			t.Errorf("%s: it saw no job complete (no %q in its output):\n%s", b, want, log)
		}
	}
	if pdfs, _ := filepath.Glob(filepath.Join(dir, "*.pdf")); len(pdfs) == 0 {
		t.Errorf("the tour saved no PDF in its directory")
	}
}

// namespaceScript runs in a network namespace of its own (unshare -rn), in the
// tour's directory: it brings up the loopback, starts bin/sheetd there with its
// defaults (embedded NATS on 127.0.0.1:4222, HTTP on 127.0.0.1:8080, data in
// ./data, the offline provider), as make run does, waits (at most 60 s) until it
// is ready, runs tour.sh and stops sheetd (SIGTERM, at most 60 s).
const namespaceScript = `set -eu
ip link set lo up
bin/sheetd >sheetd.log 2>&1 &
sheetd=$!
stop() { kill -TERM $sheetd 2>/dev/null || true; for _ in $(seq 600); do kill -0 $sheetd 2>/dev/null || return 0; sleep 0.1; done; echo "sheetd did not stop within 60s of SIGTERM" >&2; kill -KILL $sheetd; exit 1; }
trap stop EXIT
for _ in $(seq 600); do
	curl -fs http://127.0.0.1:8080/readyz >/dev/null && break
	kill -0 $sheetd 2>/dev/null || { echo "sheetd exited before it was ready" >&2; exit 1; }
	sleep 0.1
done
curl -fs http://127.0.0.1:8080/readyz >/dev/null || { echo "sheetd not ready within 60s" >&2; exit 1; }
bash tour.sh
`

// tourScript is the bash script that runs blocks in order. A foreground block
// runs as it is, in the script's own shell (its variables and exports carry
// on); a background block runs in a subshell with its output in
// background-<i>.log, and the script waits (at most 20 s) for that output
// before going on.
func tourScript(blocks []block) string {
	var s strings.Builder
	s.WriteString("set -euo pipefail\nPS4='+ [${SECONDS}s] '\n") // bash -x shows when each command started
	s.WriteString("bgpids=()\n")
	s.WriteString("trap 'for p in \"${bgpids[@]}\"; do kill \"$p\" 2>/dev/null || true; done' EXIT\n")
	for i, b := range blocks {
		fmt.Fprintf(&s, "\n# ---- %s (%s)\necho '==== %s' >&2\n", b, b.marker, b)
		if b.marker != markBackground {
			s.WriteString("set -x\n" + b.text + "{ set +x; } 2>/dev/null\n")
			continue
		}
		log := fmt.Sprintf("background-%d.log", i)
		fmt.Fprintf(&s, "( set -x\n%s) >%s 2>&1 &\nbgpids+=($!)\n", b.text, log)
		fmt.Fprintf(&s, "for _ in $(seq 200); do grep -qv '^+' %s 2>/dev/null && break; kill -0 $! || break; sleep 0.1; done\n", log)
		fmt.Fprintf(&s, "grep -qv '^+' %s || { echo '%s: the background block printed nothing within 20s (or exited):' >&2; cat %s >&2; exit 1; }\n", log, b, log)
	}
	s.WriteString("\necho '==== every block ran; the background blocks still run?' >&2\n")
	for i, b := range blocks {
		if b.marker == markBackground {
			fmt.Fprintf(&s, "kill -0 ${bgpids[%d]} || { echo '%s: the background block exited before the end:' >&2; cat background-%d.log >&2; exit 1; }\n",
				backgroundIndex(blocks, i), b, i)
		}
	}
	return s.String()
}

// backgroundIndex is the position of blocks[i] among the background blocks.
func backgroundIndex(blocks []block, i int) int {
	n := 0
	for _, b := range blocks[:i] {
		if b.marker == markBackground {
			n++
		}
	}
	return n
}

// cleanEnv is the test's environment without what would point sheetd, sheetctl
// or nats elsewhere, with HOME in dir (no sheetctl or nats contexts).
func cleanEnv(dir string) []string {
	home := filepath.Join(dir, "home")
	_ = os.Mkdir(home, 0o755)
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "NATS_") || strings.HasPrefix(name, "SHEETPIPE_") || strings.HasPrefix(name, "OPENAI_") ||
			strings.HasPrefix(name, "LLM_") || name == "HOME" || name == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home)
	// go run (the webhook receiver of contract.md) builds with the test's own
	// cache rather than a cold one under the new HOME.
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			env = append(env, "GOCACHE="+strings.TrimSpace(string(out)))
		}
	}
	return env
}

// TestDocLinks fails on a relative link of README.md or docs/*.md to a file that
// does not exist, or to an anchor that no heading of its Markdown file makes
// (GitHub's anchors: the heading lower case, without punctuation, spaces as -).
func TestDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)|src="([^"]+)"`)
	anchors := map[string]map[string]bool{} // file relative to the root -> anchors
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		data, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		fence := false
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				fence = !fence
			}
			if fence || !strings.HasPrefix(line, "#") {
				continue
			}
			slug := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
			slug = regexp.MustCompile(`[^\p{L}\p{N}_ -]`).ReplaceAllString(slug, "")
			slug = strings.ReplaceAll(slug, " ", "-")
			for n := 0; ; n++ { // GitHub numbers repeated headings: x, x-1, x-2
				s := slug
				if n > 0 {
					s = fmt.Sprintf("%s-%d", slug, n)
				}
				if !a[s] {
					a[s] = true
					break
				}
			}
		}
		anchors[file] = a
		return a
	}
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1] + m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(filepath.Join("..", dest)); err != nil {
					t.Errorf("%s: link %s: %v", file, target, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[anchor] {
				t.Errorf("%s: link %s: no heading of %s makes anchor #%s", file, target, dest, anchor)
			}
		}
	}
}
