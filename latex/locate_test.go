package latex

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	tests := []struct {
		name     string
		source   []string // lines 1..n
		err      LatexError
		wantLine int
	}{
		{
			name:     "missing package: its \\usepackage, not the line after",
			source:   []string{`\documentclass{article}`, `\usepackage{amsmath,fontawesome5} % icons`, ``, `\begin{document}`},
			err:      LatexError{Message: `LaTeX package "fontawesome5" is not installed (fontawesome5.sty)`, Line: 3},
			wantLine: 2,
		},
		{
			name:     "missing package: a longer name holding it is not it",
			source:   []string{`\documentclass{article}`, `\usepackage{tikz}`, `\usepackage{tikz-cd}`, `\begin{document}`},
			err:      LatexError{Message: `LaTeX package "tikz-cd" is not installed (tikz-cd.sty)`, Line: 4},
			wantLine: 3,
		},
		{
			name:     "missing class",
			source:   []string{`\documentclass[12pt]{examx}`, `\begin{document}`},
			err:      LatexError{Message: `document class "examx" is not installed (examx.cls)`, Line: 2},
			wantLine: 1,
		},
		{
			name:     "missing babel language: no line from pdflatex",
			source:   []string{`\documentclass{article}`, `\usepackage[T1]{fontenc}`, `\usepackage[french,klingon]{babel}`, `\begin{document}`, `klingon text`},
			err:      LatexError{Message: `babel language "klingon" is not installed (klingon.ldf)`},
			wantLine: 3,
		},
		{
			name:     "runaway argument ended by a paragraph",
			source:   []string{`\begin{document}`, `\section*{Fractions`, `Solve.`, ``, `x`},
			err:      LatexError{Message: `Paragraph ended before \@ssect was complete.`, Snippet: "Runaway argument?\n{Fractions Solve. \n./main.tex:4: Paragraph", Line: 4},
			wantLine: 2,
		},
		{
			name:     "runaway argument to the end of the file",
			source:   []string{`\begin{document}`, `Name: \textbf{Answer`, `the questions.`, `\end{document}`},
			err:      LatexError{Message: `File ended while scanning use of \textbf .`, Snippet: "Runaway argument?\n{Answer the questions. \\end {document} \n! File ended"},
			wantLine: 2,
		},
		{
			name:     "text before the first item",
			source:   []string{`\begin{enumerate}[label=\alph*)]`, `  Solve the following.`, ``, `  \item $1+1$`},
			err:      LatexError{Message: `LaTeX Error: Something's wrong--perhaps a missing \item.`, Line: 4},
			wantLine: 2,
		},
		{
			name:     "text before the first question of exam",
			source:   []string{`\begin{questions} Answer all.`, `\question[2] x`},
			err:      LatexError{Message: `LaTeX Error: Something's wrong--perhaps a missing \item.`, Line: 2},
			wantLine: 1,
		},
		{
			name:     "an item outside any list keeps its line",
			source:   []string{`\begin{center}`, `Some text`, `\item one`},
			err:      LatexError{Message: `LaTeX Error: Something's wrong--perhaps a missing \item.`, Line: 3},
			wantLine: 3,
		},
		{
			name:     "a later item keeps its line",
			source:   []string{`\begin{itemize}`, `\item one`, `\item two`},
			err:      LatexError{Message: `LaTeX Error: Something's wrong--perhaps a missing \item.`, Line: 3},
			wantLine: 3,
		},
		{
			name:     "unclosed $ seen at the paragraph end",
			source:   []string{`Intro $a$ text.`, `Compute $x^2 for x = 3.`, `Next line \$5.`, ``},
			err:      LatexError{Message: "Missing $ inserted.", Line: 4},
			wantLine: 2,
		},
		{
			name:     "missing $ on a text line keeps its line",
			source:   []string{`Compute x^2 here.`, ``},
			err:      LatexError{Message: "Missing $ inserted.", Line: 1},
			wantLine: 1,
		},
		{
			name:     "one-argument frac in a display",
			source:   []string{`\[`, `  \frac{3}`, `\]`},
			err:      LatexError{Message: "Missing } inserted.", Line: 3},
			wantLine: 2,
		},
		{
			name:     "one-argument frac inline keeps its line",
			source:   []string{`\item $\frac{1}$ of 10`},
			err:      LatexError{Message: "Missing } inserted.", Line: 1},
			wantLine: 1,
		},
		{
			name:     "environment left open to the end",
			source:   []string{`\begin{document}`, `\begin{itemize}`, `\item one`, `\end{document}`},
			err:      LatexError{Message: `LaTeX Error: \begin{itemize} on input line 2 ended by \end{document}.`, Line: 4},
			wantLine: 2,
		},
		{
			name:     "other errors keep pdflatex's line",
			source:   []string{`\begin{document}`, `\foo`},
			err:      LatexError{Message: "Undefined control sequence.", Line: 2},
			wantLine: 2,
		},
		{
			name:     "a line beyond the source is searched from the end",
			source:   []string{`\usepackage{nothere}`},
			err:      LatexError{Message: `LaTeX package "nothere" is not installed (nothere.sty)`, Line: 99},
			wantLine: 1,
		},
		{
			name:     "a commented-out mention is not the line",
			source:   []string{`\usepackage{nothere}`, `% \usepackage{nothere}`, `\begin{document}`},
			err:      LatexError{Message: `LaTeX package "nothere" is not installed (nothere.sty)`, Line: 3},
			wantLine: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			le := tt.err
			err := fmt.Errorf("wrapped: %w", &le)
			requireEqual(t, locate(err, strings.Join(tt.source, "\r\n")), err, "returned error")
			requireEqual(t, le.Line, tt.wantLine, "line")
		})
	}
}

func TestLocateLeavesOtherErrorsAlone(t *testing.T) {
	timeout := &LatexError{Message: "compilation timed out", Line: 0, cause: ErrTimeout}
	requireEqual(t, locate(timeout, `\begin{itemize} on input line 1 ended by \end{document}`), error(timeout), "timeout")
	requireEqual(t, timeout.Line, 0, "timeout line")
	plain := errors.New("pdflatex gone")
	requireEqual(t, locate(plain, "x"), plain, "plain error")
	requireEqual(t, locate(nil, "x"), nil, "nil")
}

func TestParseMissingRoundTrip(t *testing.T) {
	for _, m := range []Missing{
		{MissingPackage, "enumitem", "enumitem.sty"},
		{MissingClass, "exam", "exam.cls"},
		{MissingLanguage, `we"ird\name`, "x.ldf"},
		{MissingTikzLib, "calendar", "tikzlibrarycalendar.code.tex"},
	} {
		got, ok := ParseMissing(m.String())
		requireEqual(t, ok, true, "parsed "+m.String())
		requireEqual(t, got, m, "missing")
	}
	for _, msg := range []string{"", "Undefined control sequence.", `LaTeX package "x" is installed (x.sty)`, `LaTeX package "x is not installed (x.sty)`} {
		_, ok := ParseMissing(msg)
		requireEqual(t, ok, false, "parsed "+msg)
	}
}
