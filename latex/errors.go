package latex

import (
	"errors"
	"fmt"
)

var (
	// ErrNoCompiler means pdflatex (or its kpsewhich) is not on PATH.
	ErrNoCompiler = errors.New("latex: compiler not found")
	// ErrNoSandbox means the compile jail (bubblewrap) cannot be set up on this
	// host; the error says how to fix it.
	ErrNoSandbox = errors.New("latex: compile sandbox unavailable")
	// ErrInvalidConfig marks a Config that fails validation.
	ErrInvalidConfig = errors.New("latex: invalid config")
	// ErrTimeout marks a *LatexError for a compile that ran past Config.Timeout.
	// An endless loop is a document problem, so a fix may repair it.
	ErrTimeout = errors.New("latex: compilation timed out")
	// ErrSandbox marks a *LatexError for a document that opened a file outside
	// its work directory and the TeX trees, or tampered with pdflatex's record
	// of the files it opened. Its PDF and log are withheld.
	ErrSandbox = errors.New("latex: sandbox violation")
)

// LatexError is a document error: the source does not compile.
type LatexError struct {
	// Log is the pdflatex log (the .log file, or the console output when there is
	// none), at most Config.MaxLog bytes: its start and the region around the
	// first error. Empty for timeouts and sandbox violations.
	Log string
	// Snippet is the first error with its context, including TeX's "l.NN" line.
	Snippet string
	// Line is the main.tex line of the first error, 0 if unknown.
	Line int
	// Message is the first error message alone, e.g. "Undefined control sequence.".
	Message string

	cause error // ErrTimeout, ErrSandbox or nil
}

// Error returns e.g. "latex: line 12: Undefined control sequence.".
func (e *LatexError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("latex: line %d: %s", e.Line, e.Message)
	}
	return "latex: " + e.Message
}

// Unwrap returns ErrTimeout or ErrSandbox when one of them caused the error.
func (e *LatexError) Unwrap() error { return e.cause }
