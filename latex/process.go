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
	state    *os.ProcessState // nil when timedOut
	output   []byte           // console output, at most maxOutput bytes
	timedOut bool
}

// run runs pdflatex in dir and waits for it, at most Config.Timeout. A timeout
// is a result; a cancelled ctx or a failure to run pdflatex at all is an error.
func (c *Compiler) run(ctx context.Context, dir string) (runResult, error) {
	runCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out := &cappedBuffer{limit: maxOutput}
	cmd := exec.CommandContext(runCtx, c.path, "-no-shell-escape", "-interaction=nonstopmode",
		"-halt-on-error", "-file-line-error", "-recorder", sourceName)
	cmd.Dir = dir
	cmd.Env = sandboxEnv(c.envPath, dir)
	cmd.Stdout = out // stdin stays nil: /dev/null
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return runResult{}, fmt.Errorf("latex: start %s: %w", c.path, err)
	}
	pid := cmd.Process.Pid
	if err := limitFiles(pid, c.fileMax); err != nil {
		_ = killGroup(pid)
		_ = cmd.Wait()
		return runResult{}, fmt.Errorf("latex: limit pdflatex: %w", err)
	}
	waitErr := cmd.Wait()
	// Whatever happened, leave nothing of the group behind (a straggler holding
	// the output pipe, say). The pgid stays reserved while a member lives; once
	// none does, the kill finds nothing, as Linux hands out pids in sequence and
	// would have to wrap around within these microseconds to reuse it.
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
	return runResult{state: cmd.ProcessState, output: out.Bytes()}, nil
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
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return string(output), nil
	}
	if err != nil {
		return "", fmt.Errorf("latex: open log: %w", err)
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
