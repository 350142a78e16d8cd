package latex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// maxOutput bounds the console output kept from one run; the rest is drained
	// and dropped.
	maxOutput = 1 << 20
	// waitDelay bounds how long Wait waits for the output pipe after pdflatex
	// exited or was killed.
	waitDelay = 2 * time.Second
)

// runResult is how one pdflatex run ended.
type runResult struct {
	exitCode int            // pdflatex's exit status when it exited on its own
	signal   syscall.Signal // the signal that killed pdflatex, 0 if none
	output   []byte         // console output, at most maxOutput bytes
	timedOut bool
	passes   int // pdflatex runs of a compile, each with its main<N>.fls
}

var rerunRE = regexp.MustCompile(`(?i)` + rerunPattern)

// run runs pdflatex on dir's main.tex (or, with r.build in the jail, dumps
// the format of dir's pre.tex), in the jail or bare, and waits for it, at
// most until deadline. A compile runs pdflatex again while its log asks for a
// rerun, at most r.passes times in all, the deadline bounding them all. It
// returns the directory holding pdflatex's output files (main.pdf, main.log,
// main<N>.fls; main.fmt and main.fls for a build). A timeout is a result; a
// cancelled ctx or a failure to run pdflatex at all is an error.
func (c *Compiler) run(ctx context.Context, dir string, deadline time.Time, r jailRun) (runResult, string, error) {
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.jail == nil {
		return c.runBare(ctx, runCtx, dir, max(r.passes, 1))
	}
	if _, err := os.Stat(c.path); err != nil { // the jail would only say "not found"
		return runResult{}, "", fmt.Errorf("latex: %w", err)
	}
	name := sourceName
	if r.build {
		name = buildSource
	}
	src, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return runResult{}, "", fmt.Errorf("latex: open source: %w", err)
	}
	defer src.Close()
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		return runResult{}, "", fmt.Errorf("latex: create out dir: %w", err)
	}
	cmd := c.jail.command(runCtx, c.path, outDir, c.fileMax, c.cfg.Timeout, r)
	cmd.ExtraFiles = []*os.File{src} // fd 3, copied into the jail by bwrap
	res, err := c.wait(ctx, runCtx, cmd, false)
	if err != nil || res.timedOut {
		return res, outDir, err
	}
	res, err = jailResult(res.output, outDir, cmd.ProcessState, r.build)
	return res, outDir, err
}

// runBare runs pdflatex without the jail in dir, at most passes times while
// its log asks for a rerun, renaming each pass's recorder file main<N>.fls.
func (c *Compiler) runBare(ctx, runCtx context.Context, dir string, passes int) (runResult, string, error) {
	for pass := 1; ; pass++ {
		cmd := exec.CommandContext(runCtx, c.path, "-no-shell-escape", "-interaction=nonstopmode",
			"-halt-on-error", "-file-line-error", "-recorder", sourceName)
		cmd.Dir = dir
		cmd.Env = sandboxEnv(c.envPath, dir)
		res, err := c.wait(ctx, runCtx, cmd, true)
		if err != nil || res.timedOut {
			return res, dir, err
		}
		res.passes = pass
		fls := filepath.Join(dir, recorderName)
		if err := os.Rename(fls, filepath.Join(dir, passRecorder(pass))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return runResult{}, "", fmt.Errorf("latex: keep recorder file: %w", err)
		}
		if res.signal != 0 || res.exitCode != 0 || pass >= passes {
			return res, dir, nil
		}
		log, err := readLog(filepath.Join(dir, logName), nil)
		if err != nil || !rerunRE.MatchString(log) {
			return res, dir, err
		}
	}
}

// passRecorder is the name the recorder file of pass n is kept under.
func passRecorder(n int) string { return fmt.Sprintf("main%d.fls", n) }

// wait starts cmd in its own process group and waits for it. bare caps the
// files pdflatex writes (the jail's wrapper does that itself).
func (c *Compiler) wait(ctx, runCtx context.Context, cmd *exec.Cmd, bare bool) (runResult, error) {
	out := &cappedBuffer{limit: maxOutput}
	cmd.Stdout = out // stdin stays nil: /dev/null
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return runResult{}, fmt.Errorf("latex: start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	if bare {
		if err := limitFiles(pid, c.fileMax); err != nil {
			_ = killGroup(pid)
			_ = cmd.Wait()
			return runResult{}, fmt.Errorf("latex: limit pdflatex: %w", err)
		}
	}
	waitErr := cmd.Wait()
	// Whatever happened, leave nothing of the group behind (a straggler holding
	// the output pipe, say). The pgid stays reserved while a member lives; once
	// none does, the kill finds nothing, as Linux hands out pids in sequence and
	// would have to wrap around within these microseconds to reuse it. In the
	// jail, killing bwrap kills everything inside (--die-with-parent, and the
	// PID namespace ends with its first process).
	_ = killGroup(pid)
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
	case ctx.Err() != nil:
		return runResult{}, fmt.Errorf("latex: compile: %w", ctx.Err())
	case runCtx.Err() != nil:
		return runResult{timedOut: true}, nil
	case !errors.As(waitErr, &exitErr):
		return runResult{}, fmt.Errorf("latex: wait for pdflatex: %w", waitErr)
	}
	res := runResult{output: out.Bytes()}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		res.signal = ws.Signal()
	}
	res.exitCode = cmd.ProcessState.ExitCode()
	return res, nil
}

// jailResult reads how a jail run ended from the status file the wrapper
// wrote last (and, for a compile, the passes file before it). Without one the
// jail itself failed (bwrap could not set it up): that is not the document's
// fault, so it is a plain error quoting bwrap's own messages.
func jailResult(output []byte, outDir string, state *os.ProcessState, build bool) (runResult, error) {
	b, err := readOutput(filepath.Join(outDir, statusName), 64)
	if errors.Is(err, fs.ErrNotExist) {
		var msgs []string
		for _, line := range strings.Split(string(output), "\n") {
			if strings.HasPrefix(line, "bwrap:") {
				msgs = append(msgs, line)
			}
		}
		return runResult{}, fmt.Errorf("latex: compile jail failed (%s): %q", state, strings.Join(msgs, "; "))
	}
	if err != nil {
		return runResult{}, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return runResult{}, fmt.Errorf("latex: malformed jail status %q", b)
	}
	res := runResult{output: output}
	if code > 128 && code <= 128+64 { // the shell's way to say "killed by signal code-128"
		res.signal = syscall.Signal(code - 128)
	} else {
		res.exitCode = code
	}
	if build {
		return res, nil
	}
	b, err = readOutput(filepath.Join(outDir, passesName), 64)
	if err != nil {
		return runResult{}, fmt.Errorf("latex: jail passes: %w", err)
	}
	if res.passes, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || res.passes < 1 || res.passes > maxPasses {
		return runResult{}, fmt.Errorf("latex: malformed jail passes %q", b)
	}
	return res, nil
}

// readOutput reads a file pdflatex or the jail wrote, at most limit bytes. It
// must be a regular file, not a link.
func readOutput(path string, limit int64) ([]byte, error) {
	f, err := openOutput(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("latex: read %s: %w", filepath.Base(path), err)
	}
	return b, nil
}

// openOutput opens a file pdflatex or the jail wrote without following a link
// and checks it is a regular file.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("latex: open %s: %w", filepath.Base(path), err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("latex: open %s: %w", filepath.Base(path), err)
	}
	return f, nil
}

// sandboxEnv is pdflatex's whole environment. TEXMFOUTPUT stays unset, so with
// openin_any=p and openout_any=p absolute paths and ".." are refused.
func sandboxEnv(path, dir string) []string {
	return []string{
		"PATH=" + path,
		"HOME=" + dir,
		"TEXMFVAR=" + filepath.Join(dir, "texmf-var"),
		"openin_any=p",
		"openout_any=p",
		"shell_escape=f",
		"max_print_line=1000",
	}
}

// killGroup SIGKILLs the process group led by pid; an empty group is fine.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// cappedBuffer keeps the first limit bytes written to it and drops the rest.
// exec.Cmd writes to it from one goroutine when it is both Stdout and Stderr.
type cappedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

// readLog returns main.log, or the console output when there is no log. A log
// over logReadLimit keeps its first and last halves.
func readLog(path string, output []byte) (string, error) {
	f, err := openOutput(path)
	if errors.Is(err, fs.ErrNotExist) {
		return string(output), nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("latex: stat log: %w", err)
	}
	if fi.Size() == 0 {
		return string(output), nil
	}
	if fi.Size() <= logReadLimit {
		b, err := io.ReadAll(f)
		if err != nil {
			return "", fmt.Errorf("latex: read log: %w", err)
		}
		return string(b), nil
	}
	half := int64(logReadLimit / 2)
	head, tail := make([]byte, half), make([]byte, half)
	if _, err := f.ReadAt(head, 0); err != nil {
		return "", fmt.Errorf("latex: read log: %w", err)
	}
	if _, err := f.ReadAt(tail, fi.Size()-half); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("latex: read log: %w", err)
	}
	return string(head) + truncatedMarker + string(tail), nil
}
