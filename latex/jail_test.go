package latex

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// The secret the attacks below are after: in the environment sheetd (here the
// test process) was started with, and in a file outside the work directory.
const (
	secretEnv   = "SHEETPIPE_WEBHOOK_SECRET"
	secretValue = "Zq7sheetpipeJailSecretW4x"
	childEnv    = "SHEETPIPE_LATEX_TEST_CHILD"
)

// inChildWithSecret re-runs the calling test in a fresh test process started
// with the secret in its environment, and reports whether this is that child.
// /proc/<pid>/environ shows a process's environment as it was at exec, so a
// t.Setenv would not put the secret where an attacker reads it.
func inChildWithSecret(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		t.Setenv(secretEnv, secretValue) // and in the live environment too
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), secretEnv+"="+secretValue)
	out, err := cmd.CombinedOutput()
	t.Logf("child test process:\n%s", out)
	if err != nil {
		t.Fatalf("child test process: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatal("the child process did not run the test")
	}
	return false
}

// secretTargets are the names under which a document may try to reach the
// secret: the file's absolute path, the same through kpathsea's
// $SELFAUTOPARENT, ~ and $HOME (which openin_any=p does not expand before its
// check), the environment of pdflatex itself, of its parent and of pid 1, and
// kpathsea's expansion of the variable itself.
func secretTargets(t *testing.T, c *Compiler) (file string, names map[string]string) {
	t.Helper()
	dir := t.TempDir()
	file = filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(file, []byte(secretValue+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A copy next to the job directories, where ~/.. leads without the jail.
	if err := os.WriteFile(filepath.Join(c.area.dir, "secret.txt"), []byte(secretValue+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names = map[string]string{
		"absolute":        file,
		"home":            `\string~/../secret.txt`,
		"HOME variable":   `\string$HOME/../secret.txt`,
		"self environ":    "/proc/self/environ",
		"parent environ":  fmt.Sprintf("/proc/%d/environ", os.Getpid()),
		"pid 1 environ":   "/proc/1/environ",
		"secret variable": `\string$` + secretEnv,
	}
	out, err := exec.Command("kpsewhich", "-var-value=SELFAUTOPARENT").Output()
	if err != nil {
		t.Fatalf("kpsewhich: %v", err)
	}
	if rel, err := filepath.Rel(strings.TrimSpace(string(out)), file); err == nil && !strings.HasPrefix(rel, "..") {
		names["SELFAUTOPARENT"] = `\string$SELFAUTOPARENT/` + rel
	}
	return file, names
}

// leakDocuments are attacks on one file name, each a document that puts what
// it read where the caller can see it: the log (\message), the PDF's info
// dictionary, its catalog and the page. A missing file makes some of them
// fail, which is fine: the document's output is what must not hold the secret.
func leakDocuments(name string) map[string]string {
	show := `\message{[\x]}\pdfinfo{/Subject (\x)}\pdfcompresslevel=0 \detokenize\expandafter{\x}`
	return map[string]string{
		"pdffiledump":  `\edef\x{\pdffiledump offset 0 length 4000 {` + name + `}}` + show,
		"pdfmdfivesum": `\edef\x{\pdfmdfivesum file {` + name + `}}` + show,
		"pdffilesize":  `\edef\x{\pdffilesize{` + name + `}}` + show,
		"openin read": `\newread\r\immediate\openin\r=` + name + ` \def\x{}` +
			`\ifeof\r\else\read\r to\x\fi` + show,
		"primitive input": `\makeatletter\@@input "` + name + `" \relax`,
		"input":           `\input{` + name + `}`,
		"pdfobj file": `\pdfcompresslevel=0\immediate\pdfobj file {` + name + `}` +
			`\pdfcatalog{/X \the\pdflastobj\space 0 R}hello`,
		"pdfximage":  `\pdfximage{` + name + `}\pdfrefximage\pdflastximage`,
		"pdfmapfile": `\pdfmapfile{+` + name + `}hello\newpage\foo`,
	}
}

func wrap(body string) string {
	return "\\documentclass{article}\n\\begin{document}\n" + body + "\n\\end{document}\n"
}

// TestJailHidesSecrets runs every attack on every name against the real jail
// and pdflatex: the secret, its hex (\pdffiledump) and its MD5 appear in no
// output, not even deflated PDF streams.
func TestJailHidesSecrets(t *testing.T) {
	if !inChildWithSecret(t) {
		return
	}
	c, tmp := newTestCompiler(t, Config{})
	file, names := secretTargets(t, c)
	forbidden := secretSpellings(t, file)
	for target, name := range names {
		for attack, body := range leakDocuments(name) {
			t.Run(target+"/"+attack, func(t *testing.T) {
				pdf, err := c.Compile(t.Context(), wrap(body))
				outputs := map[string]string{"pdf": string(pdf), "pdf streams": inflateStreams(pdf)}
				if err != nil {
					le := requireLatexError(t, err)
					outputs["log"], outputs["snippet"], outputs["message"], outputs["error"] = le.Log, le.Snippet, le.Message, le.Error()
				}
				for what, out := range outputs {
					for _, f := range forbidden {
						requireNotContains(t, out, f, what)
					}
				}
				requireEmptyDir(t, tmp)
			})
		}
	}
}

// TestJailLeavesNoOracle asks yes/no questions about the secret's first byte
// through every channel a document controls — a halting error, an endless
// loop (the timeout), a sandbox violation — with a right guess and a wrong
// one: both end the same way, with the same message.
func TestJailLeavesNoOracle(t *testing.T) {
	if !inChildWithSecret(t) {
		return
	}
	c, tmp := newTestCompiler(t, Config{Timeout: 3 * time.Second})
	_, names := secretTargets(t, c)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", os.Getpid()))
	if err != nil || len(environ) == 0 {
		t.Fatalf("read own environ: %v", err)
	}
	firstByte := map[string]byte{names["absolute"]: secretValue[0], names["parent environ"]: environ[0]}
	if n, ok := names["SELFAUTOPARENT"]; ok {
		firstByte[n] = secretValue[0]
	}
	// Each question reads the first byte of a name one way and compares it
	// with a guess; each answer is a way for the document to end that the
	// recorder check (which withholds everything of a run that read outside
	// files) does not mask without the jail.
	questions := map[string]func(name string, guess byte) string{
		"pdffiledump": func(name string, g byte) string {
			return fmt.Sprintf(`\ifnum\pdfstrcmp{\pdffiledump offset 0 length 1 {%s}}{%02X}=0 `, name, g)
		},
		"openin": func(name string, g byte) string {
			return `\newread\r\immediate\openin\r=` + name + ` \ifeof\r\def\x{}\else\read\r to\x\fi` +
				`\ifnum\pdfstrcmp{\expandafter\@car\x\relax\@nil}{` + string(g) + `}=0 `
		},
	}
	answers := map[string]string{
		"loop":               `\def\l{\l}\l`,
		"halting error":      `\foo`,
		"file size limit":    `\def\y{\message{` + strings.Repeat("x", 100) + `}\y}\y`,
		"recorder overwrite": `\newwrite\f\immediate\openout\f=main.fls\immediate\write\f{PWD .}\immediate\closeout\f`,
		"sandbox violation":  `\immediate\pdfobj file {/proc/version}`,
	}
	c.fileMax = 1 << 20
	for name, right := range firstByte {
		for question, ask := range questions {
			for answer, act := range answers {
				if question == "openin" && answer != "loop" {
					continue // one answer is enough to show \openin reads nothing
				}
				t.Run(question+"/"+answer+"/"+name, func(t *testing.T) {
					requireSameOutcome(t, c, right, func(guess byte) string {
						return `\makeatletter` + ask(name, guess) + act + `\fi hello`
					})
					requireEmptyDir(t, tmp)
				})
			}
		}
	}
}

// requireSameOutcome compiles doc with the right guess and a wrong one and
// requires the same outcome.
func requireSameOutcome(t *testing.T, c *Compiler, right byte, doc func(guess byte) string) {
	t.Helper()
	wrong := right ^ 0x01
	outcomes := [2]string{}
	for i, guess := range []byte{right, wrong} {
		pdf, err := c.Compile(t.Context(), wrap(doc(guess)))
		outcomes[i] = describeOutcome(pdf, err)
	}
	requireEqual(t, outcomes[0], outcomes[1], "outcome of the right guess vs a wrong one")
}

// describeOutcome is what a caller can tell of a compile: PDF or not, the
// error's kind, message and line.
func describeOutcome(pdf []byte, err error) string {
	var le *LatexError
	if errors.As(err, &le) {
		return fmt.Sprintf("error timeout=%t sandbox=%t line=%d message=%q",
			errors.Is(err, ErrTimeout), errors.Is(err, ErrSandbox), le.Line, le.Message)
	}
	if err != nil {
		return "failure " + err.Error()
	}
	return fmt.Sprintf("pdf=%t", strings.HasPrefix(string(pdf), "%PDF"))
}

var streamRE = regexp.MustCompile(`(?s)stream\r?\n(.*?)endstream`)

// inflateStreams returns every deflated stream of pdf, decompressed.
func inflateStreams(pdf []byte) string {
	var out strings.Builder
	for _, m := range streamRE.FindAllSubmatch(pdf, -1) {
		r, err := zlib.NewReader(bytes.NewReader(m[1]))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(r, 16<<20))
		out.Write(b)
	}
	return out.String()
}

// TestJailView looks at a running compile from outside (/proc/<pid> of its
// pdflatex): its own user, mount, pid and network namespaces, uid 65534 mapped
// to ours, an environment of only what TeX needs, its limits, and a root that
// shows none of the host's /tmp, /root, /home, /etc (but /etc/texmf), nor
// sheetpipe's own directories.
func TestJailView(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{Timeout: 7 * time.Second})
	marker := newMarker(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := compileAsync(ctx, c, endlessLoop(marker))
	waitForCompiler(t, marker, 10*time.Second)
	pid := 0
	for p, comm := range markedProcesses(t, marker) {
		if comm == "pdflatex" {
			pid = p
		}
	}
	proc := func(name string) string { return fmt.Sprintf("/proc/%d/%s", pid, name) }
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts"} {
		own, _ := os.Readlink("/proc/self/ns/" + ns)
		jailed, err := os.Readlink(proc("ns/" + ns))
		if err != nil || jailed == own {
			t.Errorf("namespace %s of pdflatex: %q (%v), ours %q: want its own", ns, jailed, err, own)
		}
	}
	uidMap, _ := os.ReadFile(proc("uid_map"))
	requireEqual(t, strings.Fields(string(uidMap))[0], jailUID, "uid inside the jail")
	environ, _ := os.ReadFile(proc("environ"))
	gotEnv := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	wantEnv := append(jailEnv(c.path), "PWD="+jailJobDir) // bwrap sets PWD
	slices.Sort(gotEnv)
	slices.Sort(wantEnv)
	requireEqual(t, strings.Join(gotEnv, " "), strings.Join(wantEnv, " "), "environment of pdflatex")
	limits, _ := os.ReadFile(proc("limits"))
	requireContains(t, string(limits), fmt.Sprintf("Max file size             %d", c.fileMax), "limits")
	requireContains(t, string(limits), "Max cpu time              8 ", "limits")
	for _, host := range []string{"tmp", "root", "home", "var/lib/sheetd", "etc/passwd", "etc/hostname",
		"work", strings.TrimPrefix(tmp, "/"), "job/../" + strings.TrimPrefix(tmp, "/")} {
		if _, err := os.Lstat(proc("root/" + host)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/%s is visible in the jail (%v)", host, err)
		}
	}
	etc, _ := os.ReadDir(proc("root/etc"))
	for _, e := range etc {
		if e.Name() != "texmf" && e.Name() != "ld.so.cache" {
			t.Errorf("/etc/%s is visible in the jail", e.Name())
		}
	}
	if _, err := os.Stat(proc("root/usr/share/texlive/texmf-dist/tex/latex/base/article.cls")); err != nil {
		t.Errorf("the TeX tree is not visible in the jail: %v", err)
	}
	cancel()
	_ = waitDone(t, done, 10*time.Second)
	requireCompilerGone(t, marker)
}

// TestNewRefusesWithoutJail: with no bwrap, or a bwrap that cannot set the
// jail up (here a stand-in that fails as Docker's default profile makes it),
// New fails naming the fix; with Sandbox none it does not need bwrap.
func TestNewRefusesWithoutJail(t *testing.T) {
	pdflatex, err := exec.LookPath("pdflatex")
	if err != nil {
		t.Skip("pdflatex is not on PATH")
	}
	empty := t.TempDir()
	failing := t.TempDir()
	script := "#!/bin/sh\necho \"bwrap: Can't mount proc on /newroot/proc: Operation not permitted\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(failing, "bwrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantIn     []string
	}{
		{name: "no bwrap", path: empty, wantIn: []string{"bwrap not found", "apt-get install bubblewrap", "COMPILE_SANDBOX=none"}},
		{name: "bwrap fails", path: failing, wantIn: []string{"Can't mount proc", "seccomp=unconfined", "COMPILE_SANDBOX=none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			_, err := New(Config{Command: pdflatex, TempDir: t.TempDir()})
			requireEqual(t, errors.Is(err, ErrNoSandbox), true, "errors.Is ErrNoSandbox ("+errString(err)+")")
			for _, s := range tt.wantIn {
				requireContains(t, err.Error(), s, "error")
			}
			c, err := New(Config{Command: pdflatex, TempDir: t.TempDir(), Sandbox: SandboxNone})
			if err != nil {
				t.Fatalf("New with Sandbox none: %v", err)
			}
			requireEqual(t, c.Sandbox(), SandboxNone, "Sandbox()")
		})
	}
	_, err = New(Config{Sandbox: "docker"})
	requireEqual(t, errors.Is(err, ErrInvalidConfig), true, "errors.Is ErrInvalidConfig ("+errString(err)+")")
}

// BenchmarkCompile compares a compile of the good worksheet in the jail and
// bare: the difference is the jail's overhead.
func BenchmarkCompile(b *testing.B) {
	for _, sandbox := range []string{SandboxBwrap, SandboxNone} {
		b.Run(sandbox, func(b *testing.B) {
			c, err := New(Config{TempDir: b.TempDir(), Sandbox: sandbox})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := c.Compile(context.Background(), goodWorksheet); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const helperEnv = "SHEETPIPE_LATEX_TEST_HELPER"

// TestCompilerDiesWithItsProcess starts a process (this test binary again)
// that compiles an endless document with a long timeout, kills that process
// alone (by pid) with SIGKILL mid-compile, and requires every process of
// that compile gone within 2s; then a new Compiler on the same TempDir
// removes the dead process's work area, with the document in it.
//
// The kill waits until pdflatex has written ready.txt: by then it has
// written all it will to its console, which is a pipe to the killed process.
// Killed earlier, pdflatex would die of SIGPIPE at its next console write
// whether or not the jail dies with its parent, and the test could not fail.
func TestCompilerDiesWithItsProcess(t *testing.T) {
	if dir := os.Getenv(helperEnv); dir != "" {
		c, err := New(Config{TempDir: dir, Timeout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Compile(context.Background(), quietLoop(os.Getenv(helperEnv+"_MARKER")))
		t.Fatalf("Compile returned: %v", err)
	}
	tmp := t.TempDir()
	marker := newMarker(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompilerDiesWithItsProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+tmp, helperEnv+"_MARKER="+marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	t.Cleanup(func() { // what a failure left behind
		for pid := range markedProcesses(t, marker) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitForCompiler(t, marker, 30*time.Second)
	waitForReady(t, marker, 30*time.Second)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	requireCompilerGone(t, marker)

	areas, _ := filepath.Glob(filepath.Join(tmp, workRootName, "*", "job-*", sourceName))
	requireEqual(t, len(areas), 1, "work dirs with the document left by the killed process")
	c, err := New(Config{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(areas[0])
	requireEqual(t, errors.Is(err, os.ErrNotExist), true, "the dead process's work dir is removed ("+errString(err)+")")
	left, _ := filepath.Glob(filepath.Join(tmp, workRootName, "*"))
	slices.Sort(left)
	want := []string{filepath.Join(tmp, workRootName, rootLockName), c.area.dir, c.area.dir + lockSuffix, c.formats.dir}
	slices.Sort(want)
	requireEqual(t, strings.Join(left, " "), strings.Join(want, " "), "left in "+workRootName)
}

// quietLoop is an endless document that writes ready.txt in its work
// directory, then loops without a word to its console.
func quietLoop(marker string) string {
	return "% " + marker + "\n\\documentclass{article}\n\\begin{document}\n" +
		"\\immediate\\openout15=ready.txt \\immediate\\closeout15 \\def\\x{\\x}\\x\n\\end{document}\n"
}

// waitForReady waits until the pdflatex compiling the document with marker
// has written ready.txt.
func waitForReady(t *testing.T, marker string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for pid, comm := range markedProcesses(t, marker) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/cwd/ready.txt", pid)); err == nil && comm == "pdflatex" {
				return
			}
		}
	}
	t.Fatalf("no pdflatex compiling %s wrote ready.txt within %s", marker, timeout)
}

// TestNewKeepsLiveWorkAreas: a Compiler created while another one (of this or
// another process: flock locks are per open file) compiles leaves that
// compile's work dir alone; leftovers without an owner go.
func TestNewKeepsLiveWorkAreas(t *testing.T) {
	a, tmp := newTestCompiler(t, Config{})
	marker := newMarker(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := compileAsync(ctx, a, endlessLoop(marker))
	waitForCompiler(t, marker, 10*time.Second)
	root := filepath.Join(tmp, workRootName)
	orphan := filepath.Join(root, "12345-1")
	stale := filepath.Join(root, "12346-2")
	for _, d := range []string{orphan, stale, filepath.Join(stale, "job-1")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(stale+lockSuffix, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{TempDir: tmp}); err != nil {
		t.Fatal(err)
	}
	jobs, _ := filepath.Glob(filepath.Join(a.area.dir, "job-*"))
	requireEqual(t, len(jobs), 1, "the running compile's work dir")
	for _, gone := range []string{orphan, stale, stale + lockSuffix} {
		_, err := os.Stat(gone)
		requireEqual(t, errors.Is(err, os.ErrNotExist), true, gone+" removed")
	}
	cancel()
	_ = waitDone(t, done, 10*time.Second)
	requireEmptyDir(t, tmp)
}

// secretSpellings are the forms in which the secret in file could leak: itself,
// its hex (\pdffiledump) and its MD5 (\pdfmdfivesum), in both cases.
func secretSpellings(t *testing.T, file string) []string {
	t.Helper()
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(content)
	return []string{secretValue, strings.ToUpper(hex.EncodeToString([]byte(secretValue))),
		hex.EncodeToString([]byte(secretValue)), strings.ToUpper(hex.EncodeToString(sum[:])), hex.EncodeToString(sum[:])}
}
