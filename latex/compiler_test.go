package latex

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodWorksheet = `\documentclass[11pt]{article}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{tabularx}
\usepackage{multicol}
\begin{document}
\section*{Fractions worksheet}
Name: \underline{\hspace{6cm}}
\begin{multicols}{2}
\begin{enumerate}
\item $\frac{1}{2} + \frac{1}{3} = \rule{2cm}{0.4pt}$
\item $\frac{3}{4} - \frac{1}{8} = \rule{2cm}{0.4pt}$
\item $\sqrt{16} \times 2 = \rule{2cm}{0.4pt}$
\item $\begin{aligned} x + 1 &= 3 \\ x &= \rule{1cm}{0.4pt} \end{aligned}$
\end{enumerate}
\end{multicols}
\begin{tabularx}{\textwidth}{|X|X|}
\hline
Fraction & Decimal \\ \hline
$\frac{1}{4}$ & \\ \hline
\end{tabularx}
\end{document}
`

// newTestCompiler builds a Compiler on real pdflatex whose work directories go
// to a fresh t.TempDir() (cfg.TempDir), which must be empty after each Compile.
func newTestCompiler(t *testing.T, cfg Config) (*Compiler, string) {
	t.Helper()
	if _, err := exec.LookPath("pdflatex"); err != nil {
		t.Skip("pdflatex is not on PATH")
	}
	cfg.TempDir = t.TempDir()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, cfg.TempDir
}

// requireLatexError stops the test unless err is a *LatexError.
func requireLatexError(t *testing.T, err error) *LatexError {
	t.Helper()
	var le *LatexError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LatexError", err, err)
	}
	return le
}

// requireEmptyDir stops the test when a work directory was left in a work
// area under dir (TempDir), or anything but sheetpipe-compile in dir.
func requireEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range entries {
		if e.Name() != workRootName {
			t.Fatalf("left behind in %s: %s", dir, e.Name())
		}
	}
	areas, err := filepath.Glob(filepath.Join(dir, workRootName, "*", "job-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(areas) != 0 {
		t.Fatalf("work directory left behind: %s", areas[0])
	}
}

func TestCompileGoodWorksheet(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	pdf, err := c.Compile(t.Context(), goodWorksheet)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	requireEqual(t, strings.HasPrefix(string(pdf), "%PDF"), true, "PDF starts with %PDF")
	requireEmptyDir(t, tmp)
}

func TestCompileBrokenDocuments(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	tests := []struct {
		name        string
		body        string // between \begin{document} (line 3) and \end{document}
		preamble    string // line 2
		wantLine    int
		wantMessage string // substring
	}{
		{name: "undefined control sequence", body: "Hello\n\\foo bar", wantLine: 5, wantMessage: "Undefined control sequence."},
		{name: "missing end itemize", body: "\\begin{itemize}\n\\item one\n\\item two", wantLine: 4,
			wantMessage: `\begin{itemize} on input line 4 ended by \end{document}.`},
		{name: "mismatched environment", body: "\\begin{center}\nx\n\\end{itemize}", wantLine: 6,
			wantMessage: `\begin{center} on input line 4 ended by \end{itemize}.`},
		// TeX reports the line it was reading when the file prompt failed (the
		// \usepackage peeks at the next line for an optional date): the
		// \usepackage's own line is reported.
		{name: "missing package", preamble: "\\usepackage{doesnotexist}", body: "x", wantLine: 2,
			wantMessage: `LaTeX package "doesnotexist" is not installed (doesnotexist.sty)`},
		{name: "missing dollar", body: "Text\nx^2 here", wantLine: 5, wantMessage: "Missing $ inserted."},
		{name: "runaway argument", preamble: `\def\foo#1{#1}`, body: "\\foo{abc\n\nxyz}", wantLine: 4,
			wantMessage: `Paragraph ended before \foo was complete.`},
		{name: "runaway argument to the end of file", body: "\\section{Intro\n\\end{document}", wantLine: 4,
			wantMessage: "File ended while scanning use of"},
		{name: "no pages of output", body: "", wantLine: 0, wantMessage: "No pages of output."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source := "\\documentclass{article}\n" + tt.preamble + "\n\\begin{document}\n" + tt.body + "\n\\end{document}\n"
			pdf, err := c.Compile(t.Context(), source)
			le := requireLatexError(t, err)
			requireEqual(t, pdf == nil, true, "pdf is nil")
			requireEqual(t, le.Line, tt.wantLine, "line")
			requireContains(t, le.Message, tt.wantMessage, "message")
			requireContains(t, le.Log, "This is pdfTeX", "log")
			requireEqual(t, le.Snippet != "", true, "snippet is set")
			requireEqual(t, errors.Is(err, ErrTimeout), false, "is ErrTimeout")
			requireEmptyDir(t, tmp)
		})
	}
}

func TestCompileTruncatesLogAroundFirstError(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{MaxLog: 1024})
	_, err := c.Compile(t.Context(), "\\documentclass{article}\n\\begin{document}\n\\foo\n\\end{document}\n")
	le := requireLatexError(t, err)
	requireEqual(t, len(le.Log) <= 1024, true, "log within MaxLog")
	requireContains(t, le.Log, "This is pdfTeX", "log start")
	requireContains(t, le.Log, "./main.tex:3: Undefined control sequence.", "log")
	requireEqual(t, le.Error(), "latex: line 3: Undefined control sequence.", "Error()")
	requireEmptyDir(t, tmp)
}

func TestCompileInfrastructureErrors(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	tests := []struct {
		name    string
		prepare func(*Compiler) context.Context
		wantIs  error
	}{
		{name: "pdflatex vanished", prepare: func(c *Compiler) context.Context {
			c.path = "/nonexistent/pdflatex"
			return t.Context()
		}, wantIs: os.ErrNotExist},
		{name: "context already cancelled", prepare: func(*Compiler) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := *c
			_, err := cc.Compile(tt.prepare(&cc), goodWorksheet)
			requireEqual(t, errors.Is(err, tt.wantIs), true, "errors.Is "+tt.wantIs.Error()+" ("+errString(err)+")")
			var le *LatexError
			requireEqual(t, errors.As(err, &le), false, "is a *LatexError")
			requireEmptyDir(t, tmp)
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := exec.LookPath("pdflatex"); err != nil {
		t.Skip("pdflatex is not on PATH")
	}
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    Config
		wantIs error
	}{
		{name: "missing compiler", cfg: Config{Command: "definitely-not-pdflatex"}, wantIs: ErrNoCompiler},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}, wantIs: ErrInvalidConfig},
		{name: "tiny MaxLog", cfg: Config{MaxLog: 10}, wantIs: ErrInvalidConfig},
		{name: "TempDir missing", cfg: Config{TempDir: "/nonexistent/dir"}, wantIs: ErrInvalidConfig},
		{name: "TempDir is a file", cfg: Config{TempDir: file}, wantIs: ErrInvalidConfig},
		{name: "defaults", cfg: Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantIs != nil {
				requireEqual(t, errors.Is(err, tt.wantIs), true, "errors.Is "+tt.wantIs.Error()+" ("+errString(err)+")")
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			requireEqual(t, c.cfg.Command, "pdflatex", "Command")
			requireEqual(t, c.cfg.Timeout, 30*time.Second, "Timeout")
			requireEqual(t, c.cfg.MaxLog, 65536, "MaxLog")
			requireEqual(t, c.cfg.TempDir, os.TempDir(), "TempDir")
			requireEqual(t, len(c.texRoots) > 0, true, "TeX trees found")
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
