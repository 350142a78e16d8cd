package latex

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
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

// ParseFormatCacheSize reads a COMPILE_FORMAT_CACHE value into a
// Config.FormatCacheSize: "off" is -1, a size is a whole number of bytes with
// an optional KiB, MiB or GiB suffix ("512MiB"), at least 1 MiB.
func ParseFormatCacheSize(s string) (int64, error) {
	if strings.EqualFold(s, "off") {
		return -1, nil
	}
	num, unit := s, int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, unit = n, u
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit || n*unit < 1<<20 {
		return 0, fmt.Errorf("%w: format cache size %q: want off or a size of at least 1MiB such as 512MiB or 2GiB",
			ErrInvalidConfig, s)
	}
	return n * unit, nil
}
