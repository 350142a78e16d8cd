package latex

import (
	"fmt"
	"os"
	"time"
)

// Config configures a Compiler.
type Config struct {
	// Command is the pdflatex binary, a name looked up on PATH or a path.
	// Default: "pdflatex".
	Command string
	// Timeout bounds one compile; when it expires the whole process group is
	// killed (COMPILE_TIMEOUT). Default: 30s.
	Timeout time.Duration
	// MaxLog is the number of log bytes kept in LatexError.Log, at least 1024.
	// Default: 65536 (64 KiB).
	MaxLog int
	// TempDir is the existing parent directory of sheetpipe-compile/, which
	// holds the per-compile work directories. Default: os.TempDir().
	TempDir string
	// Sandbox is how pdflatex is confined: SandboxBwrap ("bwrap") runs every
	// compile in a bubblewrap jail and New fails when the jail cannot be set
	// up; SandboxNone ("none") runs pdflatex bare (unsafe with untrusted LaTeX).
	// Default: "bwrap".
	Sandbox string
	// FormatCacheSize is the disk, in bytes, the dumped preamble formats may
	// use under TempDir/sheetpipe-compile/fmt, least recently used out first
	// (COMPILE_FORMAT_CACHE); -1 turns formats off. Formats are only made
	// with SandboxBwrap and pdflatex. Default: 512 MiB.
	FormatCacheSize int64
}

const (
	defaultCommand = "pdflatex"
	defaultTimeout = 30 * time.Second
	defaultMaxLog  = 64 << 10
	minMaxLog      = 1 << 10

	defaultFormatCacheSize = 512 << 20
)

func (c Config) withDefaults() Config {
	if c.Command == "" {
		c.Command = defaultCommand
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxLog == 0 {
		c.MaxLog = defaultMaxLog
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.Sandbox == "" {
		c.Sandbox = SandboxBwrap
	}
	if c.FormatCacheSize == 0 {
		c.FormatCacheSize = defaultFormatCacheSize
	}
	return c
}

func (c Config) validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %s is negative", ErrInvalidConfig, c.Timeout)
	}
	if c.MaxLog < minMaxLog {
		return fmt.Errorf("%w: MaxLog %d is below %d", ErrInvalidConfig, c.MaxLog, minMaxLog)
	}
	if c.FormatCacheSize < -1 {
		return fmt.Errorf("%w: FormatCacheSize %d: want bytes, or -1 for off", ErrInvalidConfig, c.FormatCacheSize)
	}
	if c.Sandbox != SandboxBwrap && c.Sandbox != SandboxNone {
		return fmt.Errorf("%w: Sandbox %q: want %q or %q", ErrInvalidConfig, c.Sandbox, SandboxBwrap, SandboxNone)
	}
	fi, err := os.Stat(c.TempDir)
	if err != nil {
		return fmt.Errorf("%w: TempDir: %w", ErrInvalidConfig, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: TempDir %s is not a directory", ErrInvalidConfig, c.TempDir)
	}
	return nil
}
