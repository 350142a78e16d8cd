package latex

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sandbox values of Config.Sandbox.
const (
	// SandboxBwrap runs every compile in a bubblewrap jail.
	SandboxBwrap = "bwrap"
	// SandboxNone runs pdflatex bare, confined only by its own settings and the
	// recorder check. Unsafe with LaTeX nobody trusts.
	SandboxNone = "none"
)

// Paths inside the jail.
const (
	jailJobDir = "/job" // the size-capped tmpfs pdflatex runs in
	jailOutDir = "/out" // bind of the host's out dir; only the wrapper writes it
	jailUID    = "65534"
	statusName = "status" // written to /out by the wrapper: pdflatex's exit status
	passesName = "passes" // written to /out by the wrapper before status: pdflatex runs
	// probeTimeout bounds the one jail run New makes to check the jail works.
	probeTimeout = 30 * time.Second
)

// jailScript is the trusted wrapper the jail runs: /bin/sh, with $1 the file
// size limit in 512-byte blocks, $2 the CPU limit in seconds of each pdflatex
// run, $3 the compiler, $4 the mode, $5 the most passes and $6 the format to
// load ("" for the compiler's own). It sets the limits, then, on the tmpfs:
//
//   - mode "compile": runs the compiler on main.tex, again while the run
//     succeeded, its log asks for a rerun (rerunPattern) and fewer than $5
//     passes ran; main.aux and the rest of the tmpfs live across the passes.
//     Each pass's recorder file is copied to /out/main<N>.fls as it ends, then
//     main.pdf, main.log and the number of passes (/out/passes). With a format
//     -progname stays pdflatex: pdflatex would take the format's path for its
//     program name, and put its recorder file next to the read-only format,
//     which means no recorder file at all;
//   - mode "build": dumps the format of pre.tex (format.go) with
//     mylatexformat, then copies main.fmt, main.log and main.fls.
//
// It writes the compiler's exit status last ($? is 128+N when signal N killed
// it). pdflatex cannot write to /out itself (openout_any=p refuses absolute
// paths), so a status file means the wrapper ran to its end. No user data is
// ever part of this script.
const jailScript = `[ -x "$3" ] || exit 127
ulimit -c 0 && ulimit -f "$1" && ulimit -t "$2" || exit 125
if [ "$4" = build ]; then
	"$3" -ini -jobname=main -no-shell-escape -interaction=nonstopmode -halt-on-error -file-line-error -recorder "&pdflatex" mylatexformat.ltx pre.tex </dev/null
	rc=$?
	files="main.fmt main.log main.fls"
else
	pass=0
	while :; do
		pass=$((pass+1))
		rm -f main.fls
		"$3" ${6:+-fmt=$6 -progname=pdflatex} -no-shell-escape -interaction=nonstopmode -halt-on-error -file-line-error -recorder main.tex </dev/null
		rc=$?
		if [ -f main.fls ]; then cp main.fls "/out/main$pass.fls" 2>/dev/null; fi
		[ "$rc" = 0 ] && [ "$pass" -lt "$5" ] && grep -Eqi '` + rerunPattern + `' main.log 2>/dev/null || break
	done
	echo "$pass" >/out/passes
	files="main.pdf main.log"
fi
for f in $files; do
	if [ -f "$f" ]; then cp "$f" /out/ 2>/dev/null; fi
done
echo "$rc" >/out/status
`

// rerunPattern (an extended regular expression, matched ignoring case)
// finds the log lines that ask for another pass: LaTeX's "Label(s) may have
// changed. Rerun to get cross-references right.", lastpage's and exam's
// "Rerun ..." warnings, and the like.
const rerunPattern = `rerun|label\(s\) may have changed`

// maxPasses is the most pdflatex runs of one compile.
const maxPasses = 3

// jail is the part of the bubblewrap command line every compile shares.
type jail struct {
	bwrap string   // resolved bwrap binary
	args  []string // namespaces, read-only mounts, /proc, /dev
}

// systemLibDirs are the library and binary directories pdflatex and the
// wrapper (sh, cp) need, bound read-only where they exist. The top-level ones
// are symlinks into /usr on merged-/usr systems and are recreated as such.
var (
	systemDirs   = []string{"/usr/bin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32"}
	topLevelDirs = []string{"/bin", "/lib", "/lib32", "/lib64", "/libx32"}
	systemFiles  = []string{"/etc/ld.so.cache"}
)

// jailFix names the ways out when the jail cannot be set up.
const jailFix = "install bubblewrap (Debian: apt-get install bubblewrap), or set COMPILE_SANDBOX=none to compile without a jail (unsafe with untrusted LaTeX)"

// newJail finds bwrap and lays out the read-only view of the system the
// compiler gets: the system binary and library directories, the compiler's own
// directory and the TeX trees (trees), nothing else of the host.
func newJail(compiler string, trees []string) (*jail, error) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, fmt.Errorf("%w: bwrap not found: %s", ErrNoSandbox, jailFix)
	}
	args := []string{
		"--unshare-all", "--unshare-user", "--disable-userns", "--uid", jailUID, "--gid", jailUID,
		"--die-with-parent", "--new-session", "--cap-drop", "ALL",
	}
	for _, d := range topLevelDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return nil, fmt.Errorf("latex: read link %s: %w", d, err)
			}
			args = append(args, "--symlink", target, d)
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	binds := append([]string{filepath.Dir(compiler)}, systemDirs...)
	if real, err := filepath.EvalSymlinks(compiler); err == nil {
		binds = append(binds, filepath.Dir(real))
	}
	for _, d := range outermost(append(binds, trees...)) {
		args = append(args, "--ro-bind-try", d, d)
	}
	for _, f := range systemFiles {
		args = append(args, "--ro-bind-try", f, f)
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	return &jail{bwrap: bwrap, args: args}, nil
}

// outermost returns the cleaned absolute paths with those inside another one
// dropped, sorted: binding a parent already shows its children.
func outermost(paths []string) []string {
	var clean []string
	for _, p := range paths {
		if filepath.IsAbs(p) {
			clean = append(clean, filepath.Clean(p))
		}
	}
	slices.Sort(clean)
	var out []string
	for _, p := range clean {
		if len(out) > 0 && (p == out[len(out)-1] || strings.HasPrefix(p, strings.TrimSuffix(out[len(out)-1], "/")+"/")) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// jailEnv is the whole environment inside the jail, and of bwrap itself (whose
// initial environment /proc/1/environ shows inside the jail).
func jailEnv(compiler string) []string {
	path := "/usr/bin:/bin"
	if dir := filepath.Dir(compiler); dir != "/usr/bin" && dir != "/bin" {
		path = dir + ":" + path
	}
	return []string{
		"PATH=" + path,
		"HOME=" + jailJobDir,
		"TEXMFVAR=" + filepath.Join(jailJobDir, "texmf-var"),
		"openin_any=p",
		"openout_any=p",
		"shell_escape=f",
		"max_print_line=1000",
	}
}

// jailRun says what one jail run does.
type jailRun struct {
	build  bool   // dump the format of pre.tex instead of compiling main.tex
	passes int    // the most pdflatex runs of a compile
	format string // host path of the format a compile loads, "" for none
}

// Paths of a format inside the jail: the file bound read-only and the name
// pdflatex's -fmt takes.
const (
	jailFormatFile = "/fmt/main.fmt"
	jailFormatName = "/fmt/main"
	buildSource    = "pre.tex"
)

// command builds the bwrap command of one jail run. The source (main.tex, or
// pre.tex for a build) reaches the jail as fd 3 (the caller's
// cmd.ExtraFiles[0]), copied by bwrap into the tmpfs; outDir is bound writable
// at /out for the wrapper's copies, and a format read-only at jailFormatFile.
func (j *jail) command(ctx context.Context, compiler, outDir string, fileMax uint64, cpu time.Duration, r jailRun) *exec.Cmd {
	env := jailEnv(compiler)
	args := slices.Clone(j.args)
	source, mode, format := sourceName, "compile", ""
	if r.build {
		source, mode = buildSource, "build"
	}
	args = append(args,
		"--size", strconv.Itoa(maxJobSize), "--tmpfs", jailJobDir,
		"--perms", "0600", "--file", "3", filepath.Join(jailJobDir, source),
		"--bind", outDir, jailOutDir)
	if r.format != "" {
		args = append(args, "--ro-bind", r.format, jailFormatFile)
		format = jailFormatName
	}
	args = append(args, "--chdir", jailJobDir, "--clearenv")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		args = append(args, "--setenv", k, v)
	}
	cpuSeconds := int64(cpu.Seconds()) + 1
	args = append(args, "--", "/bin/sh", "-c", jailScript, "sh",
		strconv.FormatUint(fileMax/512, 10), strconv.FormatInt(cpuSeconds, 10), compiler,
		mode, strconv.Itoa(max(r.passes, 1)), format)
	cmd := exec.CommandContext(ctx, j.bwrap, args...)
	cmd.Env = env
	return cmd
}

// probe runs the compiler's -version in a jail like a compile's, so that a
// host where the jail cannot be set up (no user namespaces, a seccomp profile
// that forbids them, a library outside the bound directories) fails at start.
func (j *jail) probe(compiler string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	args := append(slices.Clone(j.args), "--size", "1048576", "--tmpfs", jailJobDir, "--chdir", jailJobDir, "--clearenv")
	args = append(args, "--", compiler, "-version")
	cmd := exec.CommandContext(ctx, j.bwrap, args...)
	cmd.Env = jailEnv(compiler)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		return fmt.Errorf("%w: %s -version in the jail: %w: %q; %s; in Docker the container needs "+
			"--security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined (see docs/contract.md, Compile sandbox)",
			ErrNoSandbox, filepath.Base(compiler), err, msg, jailFix)
	}
	return nil
}
