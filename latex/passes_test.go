package latex

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pdfText returns the text pdftotext (poppler-utils, installed by make test)
// reads from pdf, and its page count.
func pdfText(t *testing.T, pdf []byte) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext is not on PATH (apt-get install poppler-utils; make test does)")
	}
	var text, info bytes.Buffer
	cmd := exec.Command("pdftotext", "-layout", "-", "-")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(pdf), &text
	if err := cmd.Run(); err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	cmd = exec.Command("pdfinfo", "-")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(pdf), &info
	if err := cmd.Run(); err != nil {
		t.Fatalf("pdfinfo: %v", err)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(info.String())
	if m == nil {
		t.Fatalf("pdfinfo gave no page count:\n%s", info.String())
	}
	pages, _ := strconv.Atoi(m[1])
	return text.String(), pages
}

// Documents whose references settle in the second pass.
const (
	lastPageDoc = `\documentclass{article}
\usepackage{lastpage}
\usepackage{fancyhdr}
\pagestyle{fancy}
\fancyhf{}
\cfoot{Page \thepage\ of \pageref{LastPage}}
\begin{document}
\section{Fractions}\label{sec:fractions}
See section~\ref{sec:fractions}.
\newpage
Second page.
\end{document}
`
	examPointsDoc = `\documentclass{exam}
\addpoints
\begin{document}
Total: \numpoints\ points.
\begin{questions}
\question[4] One.
\question[6] Two.
\end{questions}
\end{document}
`
	// neverSettles counts its passes in its .aux and asks for a rerun every time.
	neverSettles = `\documentclass{article}
\makeatletter
\providecommand\passes{0}
\begin{document}
\immediate\write\@auxout{\gdef\string\passes{\the\numexpr\passes+1\relax}}
This is pass \the\numexpr\passes+1\relax.
\typeout{LaTeX Warning: Label(s) may have changed. Rerun to get cross-references right.}
\end{document}
`
)

// TestCompileRerunsUntilReferencesSettle: lastpage's "Page x of y", \ref and
// exam's \numpoints show their values, not ??, in the jail and bare; a
// document that always asks for a rerun stops at the third pass.
func TestCompileRerunsUntilReferencesSettle(t *testing.T) {
	for _, sandbox := range []string{SandboxBwrap, SandboxNone} {
		t.Run(sandbox, func(t *testing.T) {
			c, tmp := newTestCompiler(t, Config{Sandbox: sandbox})
			tests := []struct {
				name, source string
				want         []string
				pages        int
			}{
				{name: "lastpage and ref", source: lastPageDoc, want: []string{"Page 1 of 2", "Page 2 of 2", "See section 1."}, pages: 2},
				{name: "exam numpoints", source: examPointsDoc, want: []string{"Total: 10 points."}, pages: 1},
				{name: "never settles", source: neverSettles, want: []string{"This is pass 3."}, pages: 1},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					pdf, err := c.Compile(t.Context(), tt.source)
					if err != nil {
						t.Fatalf("Compile: %v", err)
					}
					text, pages := pdfText(t, pdf)
					requireNotContains(t, text, "??", "pdf text")
					for _, w := range tt.want {
						requireContains(t, strings.Join(strings.Fields(text), " "), w, "pdf text")
					}
					requireEqual(t, pages, tt.pages, "pages")
					requireEmptyDir(t, tmp)
				})
			}
		})
	}
}

// TestRerunReadsEveryPassRecorder: a document that reads a file outside the
// work dir in its first pass only (keeping it in the .aux for the next) is
// still caught by the recorder check.
func TestRerunChecksEveryPass(t *testing.T) {
	for _, sandbox := range []string{SandboxBwrap, SandboxNone} {
		t.Run(sandbox, func(t *testing.T) {
			c, tmp := newTestCompiler(t, Config{Sandbox: sandbox})
			source := `\documentclass{article}
\makeatletter
\begin{document}
\ifdefined\seen\else
\immediate\pdfobj file {/proc/version}
\immediate\write\@auxout{\gdef\string\seen{}}
\typeout{Rerun please}
\fi
hello
\end{document}
`
			pdf, err := c.Compile(t.Context(), source)
			requireEqual(t, pdf == nil, true, "pdf is nil")
			le := requireLatexError(t, err)
			requireContains(t, le.Message, "outside the sandbox: /proc/version", "message")
			requireEmptyDir(t, tmp)
		})
	}
}
