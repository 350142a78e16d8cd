package latex

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	sourceName   = "main.tex"
	pdfName      = "main.pdf"
	logName      = "main.log"
	recorderName = "main.fls"

	// maxFileSize bounds every file pdflatex writes (log, PDF, aux...): an
	// endless \message loop fills the log at ~30 MB/s.
	maxFileSize = 48 << 20
	// maxJobSize bounds all the files one compile writes together (the jail's
	// tmpfs). It is above maxFileSize so that one runaway file meets its own
	// limit (pdflatex is killed at once) before the tmpfs is full (pdflatex
	// would go on, ignoring its failed writes, until the timeout).
	maxJobSize = 64 << 20
	// logReadLimit bounds how much of main.log is read back; beyond it the
	// middle is dropped before parsing.
	logReadLimit = 8 << 20
)

// Compiler compiles LaTeX sources with pdflatex in a sandbox. It is safe for
// concurrent use; each Compile runs its own pdflatex process.
type Compiler struct {
	cfg      Config
	path     string       // resolved pdflatex binary
	envPath  string       // PATH handed to pdflatex without the jail
	texRoots []string     // TeX trees a document may read, from kpsewhich
	fileMax  uint64       // RLIMIT_FSIZE of pdflatex; tests lower it
	jail     *jail        // nil with SandboxNone
	area     *workArea    // where the work directories go
	formats  *formatCache // nil when formats are off
}

// New checks cfg, finds pdflatex and kpsewhich and asks kpsewhich where the
// TeX trees are. With SandboxBwrap it runs the compiler once in the jail and
// fails with an error wrapping ErrNoSandbox, naming the fix, when that does
// not work. It then removes the work directories of Compilers that are gone
// (a crashed sheetd's). A missing binary gives an error wrapping ErrNoCompiler.
func New(cfg Config) (*Compiler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	path, err := exec.LookPath(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCompiler, err)
	}
	if path, err = filepath.Abs(path); err != nil { // pdflatex runs in the work dir
		return nil, fmt.Errorf("latex: resolve %s: %w", cfg.Command, err)
	}
	envPath := os.Getenv("PATH")
	if envPath == "" {
		envPath = "/usr/local/bin:/usr/bin:/bin"
	}
	roots, err := findTexRoots(path, envPath)
	if err != nil {
		return nil, err
	}
	c := &Compiler{cfg: cfg, path: path, envPath: envPath, texRoots: roots, fileMax: maxFileSize}
	if cfg.Sandbox == SandboxBwrap {
		if c.jail, err = newJail(path, roots); err != nil {
			return nil, err
		}
		if err := c.jail.probe(path); err != nil {
			return nil, err
		}
	}
	if c.area, err = newWorkArea(cfg.TempDir); err != nil {
		return nil, err
	}
	if cfg.Sandbox == SandboxBwrap && cfg.FormatCacheSize > 0 {
		root := filepath.Join(cfg.TempDir, workRootName)
		if c.formats, err = newFormatCache(root, cfg.FormatCacheSize, path, envPath); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Sandbox returns how this Compiler confines pdflatex: SandboxBwrap or SandboxNone.
func (c *Compiler) Sandbox() string { return c.cfg.Sandbox }

// Compile runs pdflatex on source and returns the PDF: again, at most
// maxPasses runs in all, while the log asks for a rerun (cross-references,
// lastpage, exam's point totals), and from the preamble's dumped format once
// there is one (format.go); Config.Timeout bounds it all. A document that does
// not compile gives a *LatexError (errors.As); a timeout gives one that also
// matches ErrTimeout. A cancelled ctx gives ctx.Err() wrapped, and other
// failures (no work directory, pdflatex gone) give a wrapped plain error.
func (c *Compiler) Compile(ctx context.Context, source string) (pdf []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("latex: compile: %w", err)
	}
	dir, err := c.area.jobDir()
	if err != nil {
		return nil, err
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			pdf, err = nil, errors.Join(err, fmt.Errorf("latex: remove work dir: %w", rmErr))
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, sourceName), []byte(source), 0o600); err != nil {
		return nil, fmt.Errorf("latex: write source: %w", err)
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	format, key := c.prepareFormat(ctx, dir, source, deadline)
	start := time.Now()
	res, outDir, err := c.run(ctx, dir, deadline, jailRun{passes: maxPasses, format: format})
	if err != nil {
		return nil, err
	}
	if format == "" && key != "" && !res.timedOut {
		c.formats.plain(key, time.Since(start))
	}
	pwd, roots := dir, c.texRoots // pdflatex's working directory, as the recorder file names it
	if c.jail != nil {
		pwd = jailJobDir
	}
	if format != "" {
		roots = append(slices.Clone(roots), jailFormatFile)
	}
	pdf, err = c.outcome(outDir, pwd, roots, res)
	return pdf, locate(err, source)
}

// outcome turns a finished run into the PDF or the error a caller sees; outDir
// holds pdflatex's files and pwd is where it ran. The log is only ever returned
// from a run that ended on its own with a clean recorder file: after a kill the
// recorder may not have been flushed, so it vouches for nothing.
func (c *Compiler) outcome(outDir, pwd string, roots []string, res runResult) ([]byte, error) {
	if res.timedOut || res.signal == syscall.SIGXCPU {
		msg := fmt.Sprintf("compilation timed out after %s", c.cfg.Timeout)
		return nil, &LatexError{Message: msg, cause: ErrTimeout}
	}
	if res.signal != 0 {
		return nil, &LatexError{Message: signalMessage(res.signal, c.fileMax)}
	}
	for pass := 1; pass <= res.passes; pass++ { // each pass may have read what the next one shows
		violation, err := checkRecorder(filepath.Join(outDir, passRecorder(pass)), pwd, roots)
		if err != nil {
			return nil, err
		}
		if violation != "" {
			return nil, &LatexError{Message: violation, cause: ErrSandbox}
		}
	}
	if res.exitCode == 0 {
		pdf, err := readOutput(filepath.Join(outDir, pdfName), maxFileSize)
		if err == nil {
			return pdf, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	log, err := readLog(filepath.Join(outDir, logName), res.output)
	if err != nil {
		return nil, err
	}
	return nil, c.documentError(log, res.exitCode)
}

// documentError builds the *LatexError of a run that failed on its own.
func (c *Compiler) documentError(log string, exitCode int) *LatexError {
	e := parseLog(log)
	switch {
	case e.message != "":
	case exitCode == 0:
		e.message = "pdflatex wrote no PDF"
		if strings.Contains(log, "No pages of output.") {
			e.message = "No pages of output."
		}
	default:
		e.message = fmt.Sprintf("pdflatex failed (exit %d)", exitCode)
	}
	return &LatexError{
		Log:     truncateLog(log, e.offset, c.cfg.MaxLog),
		Snippet: e.snippet,
		Line:    e.line,
		Message: e.message,
	}
}

func signalMessage(sig syscall.Signal, fileMax uint64) string {
	if sig == syscall.SIGXFSZ {
		return fmt.Sprintf("pdflatex output exceeded the file size limit (%d MiB)", fileMax>>20)
	}
	return fmt.Sprintf("pdflatex was killed (%s)", sig)
}
