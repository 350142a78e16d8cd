package latex

import (
	"fmt"
	"strings"
	"testing"
)

// Log excerpts captured from pdflatex (TeX Live 2022) with -file-line-error.
const (
	logUndefined = `LaTeX Font Info:    ... okay on input line 2.
./main.tex:4: Undefined control sequence.
l.4 \foo
         bar 
Here is how much of TeX's memory you used:
 418 strings out of 478051

./main.tex:4:  ==> Fatal error occurred, no output PDF file produced!
`
	logMissingPackage = `\belowcaptionskip=\skip49
)

! LaTeX Error: File ` + "`doesnotexist.sty'" + ` not found.

Type X to quit or <RETURN> to proceed,
or enter new name. (Default extension: sty)

Enter file name: 
./main.tex:3: Emergency stop.
<read *> 
         
l.3 \begin
          {document}^^M 
Here is how much of TeX's memory you used:

./main.tex:3:  ==> Fatal error occurred, no output PDF file produced!
`
	logRunawayParagraph = `)
Runaway argument?
{abc 
./main.tex:5: Paragraph ended before \foo was complete.
<to be read again> 
                   \par 
l.5 
     
Here is how much of TeX's memory you used:
`
	logRunawayEOF = `)
Runaway argument?
{bold \par more text \par \end {document} 
! File ended while scanning use of \textbf .
<inserted text> 
                \par 
<*> main.tex
             
Here is how much of TeX's memory you used:
 418 strings out of 478051

!  ==> Fatal error occurred, no output PDF file produced!
`
	logPackageError = `
/usr/share/texlive/texmf-dist/tex/generic/babel/babel.sty:4357: Package babel Error: Unknown option 'klingon'. Either you misspelled it
(babel)                or the language definition file klingon.ldf was not found.

See the babel package documentation for explanation.
Type  H <return>  for immediate help.
 ...                                              
                                                  
l.4357 \ProcessOptions*
                        
Here is how much of TeX's memory you used:
`
)

func TestParseLog(t *testing.T) {
	tests := []struct {
		name        string
		log         string
		wantMessage string
		wantLine    int
		wantSnippet []string // substrings
		notSnippet  []string
	}{
		{
			name:        "undefined control sequence, file-line form",
			log:         logUndefined,
			wantMessage: "Undefined control sequence.",
			wantLine:    4,
			wantSnippet: []string{"./main.tex:4: Undefined", `l.4 \foo`, "bar"},
			notSnippet:  []string{"Here is how much", "Fatal error"},
		},
		{
			name:        "undefined control sequence, classic form",
			log:         "(./main.tex\n! Undefined control sequence.\nl.12 \\foo\n         bar\n\n",
			wantMessage: "Undefined control sequence.",
			wantLine:    12,
			wantSnippet: []string{"! Undefined", `l.12 \foo`},
		},
		{
			name:        "classic form with CRLF",
			log:         "! Undefined control sequence.\r\nl.7 \\foo\r\n   x\r\n",
			wantMessage: "Undefined control sequence.",
			wantLine:    7,
		},
		{
			name:        "missing package beats the emergency stop",
			log:         logMissingPackage,
			wantMessage: `LaTeX package "doesnotexist" is not installed (doesnotexist.sty)`,
			wantLine:    3,
			wantSnippet: []string{"Emergency stop.", `l.3 \begin`, "{document}"},
		},
		{
			name: "mismatched environment",
			log: "./main.tex:6: LaTeX Error: \\begin{itemize} on input line 3 ended by \\end{document}.\n\n" +
				"See the LaTeX manual or LaTeX Companion for explanation.\n ...\n\nl.6 \\end{document}\n \n",
			wantMessage: `LaTeX Error: \begin{itemize} on input line 3 ended by \end{document}.`,
			wantLine:    6,
		},
		{
			name:        "missing dollar",
			log:         "./main.tex:4: Missing $ inserted.\n<inserted text> \n                $\nl.4 x^\n      2 here \n",
			wantMessage: "Missing $ inserted.",
			wantLine:    4,
			wantSnippet: []string{"l.4 x^", "2 here"},
		},
		{
			name:        "runaway argument ended by a paragraph",
			log:         logRunawayParagraph,
			wantMessage: `Paragraph ended before \foo was complete.`,
			wantLine:    5,
			wantSnippet: []string{"Runaway argument?\n{abc", "l.5"},
		},
		{
			name:        "runaway argument ended by the file",
			log:         logRunawayEOF,
			wantMessage: `File ended while scanning use of \textbf .`,
			wantLine:    0,
			wantSnippet: []string{"Runaway argument?", "<*> main.tex"},
			notSnippet:  []string{"Here is how much"},
		},
		{
			name:        "error inside a package has no main.tex line",
			log:         logPackageError,
			wantMessage: `babel language "klingon" is not installed (klingon.ldf)`,
			wantLine:    0,
			wantSnippet: []string{"klingon.ldf", "l.4357"},
		},
		{
			name:        "missing document class",
			log:         "! LaTeX Error: File `examx.cls' not found.\n\nEnter file name: \n./main.tex:2: Emergency stop.\n<read *> \n\nl.2 \\begin\n",
			wantMessage: `document class "examx" is not installed (examx.cls)`,
			wantLine:    2,
		},
		{
			name:        "missing input file",
			log:         "! LaTeX Error: File `chapter1.tex' not found.\n\n./main.tex:9: Emergency stop.\n",
			wantMessage: `LaTeX file "chapter1" is not installed (chapter1.tex)`,
		},
		{
			name:        "missing image keeps its message",
			log:         "./main.tex:7: LaTeX Error: File `photo' not found.\n\nl.7 \\includegraphics{photo}\n",
			wantMessage: "LaTeX Error: File `photo' not found.",
			wantLine:    7,
		},
		{
			name: "missing TikZ library",
			log: "./main.tex:3: Package tikz Error: I did not find the tikz library 'foo'. I looked for files named tikzlibraryfoo.code.tex and pgflibraryfoo.code.tex, but neither could be found in the current texmf trees..\n\n" +
				"See the tikz package documentation for explanation.\nl.3 \\usetikzlibrary{foo}\n",
			wantMessage: `TikZ library "foo" is not installed (tikzlibraryfoo.code.tex)`,
			wantLine:    3,
		},
		{
			name:        "package error continued on the next lines",
			log:         "./main.tex:8: Package siunitx Error: Invalid number 'abc'.\n(siunitx)                Check the input.\n(other)  not this\n\nl.8 \\num{abc}\n",
			wantMessage: "Package siunitx Error: Invalid number 'abc'. Check the input.",
			wantLine:    8,
		},
		{
			name:        "emergency stop alone",
			log:         ")\n! Emergency stop.\n<*> main.tex\n             \nHere is how much of TeX's memory you used:\n",
			wantMessage: "Emergency stop.",
			wantSnippet: []string{"<*> main.tex"},
		},
		{
			name:        "pdfTeX error",
			log:         "<<x>>\n!pdfTeX error: pdflatex: cannot find image file x.png\n ==> Fatal error occurred, no output PDF file produced!\n",
			wantMessage: "pdfTeX error: pdflatex: cannot find image file x.png",
		},
		{
			name:        "fatal line alone is no error",
			log:         "a\n./main.tex:6:  ==> Fatal error occurred, no output PDF file produced!\n!  ==> Fatal error occurred\n",
			wantSnippet: []string{"a\n./main.tex:6:  ==> Fatal"},
		},
		{
			name: "empty log",
		},
		{
			name:        "line number too large is unknown",
			log:         "./main.tex:99999999999999999999999: Undefined control sequence.\n",
			wantMessage: "Undefined control sequence.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			message, snippet, line := ParseLog(tt.log)
			requireEqual(t, message, tt.wantMessage, "message")
			requireEqual(t, line, tt.wantLine, "line")
			for _, s := range tt.wantSnippet {
				requireContains(t, snippet, s, "snippet")
			}
			for _, s := range tt.notSnippet {
				requireNotContains(t, snippet, s, "snippet")
			}
		})
	}
}

func TestParseLogWithoutErrorReturnsTail(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	message, snippet, line := ParseLog(b.String() + "\n\n")
	requireEqual(t, message, "", "message")
	requireEqual(t, line, 0, "line")
	requireEqual(t, strings.Count(snippet, "\n")+1, tailLines, "snippet lines")
	requireEqual(t, strings.HasPrefix(snippet, "line 11\n"), true, "snippet starts at line 11")
	requireEqual(t, strings.HasSuffix(snippet, "line 30"), true, "snippet ends at line 30")
}

func TestTruncateLog(t *testing.T) {
	const limit = 4096
	filler := strings.Repeat("LaTeX Font Info:    ... okay on input line 2.\n", 1000)
	errLine := "./main.tex:4: Undefined control sequence.\n"
	tests := []struct {
		name    string
		log     string
		focus   int
		want    []string // substrings of the result
		wantAll bool     // result is the whole log
	}{
		{name: "short log is kept whole", log: logUndefined, focus: 0, wantAll: true},
		{name: "early error keeps a prefix", log: "start\n" + errLine + filler, focus: len("start\n"), want: []string{"start\n" + errLine}},
		{name: "late error keeps start and error", log: "start\n" + filler + errLine + "l.4 \\foo\n" + filler, focus: len("start\n" + filler),
			want: []string{"start\n", truncatedMarker, errLine + "l.4 \\foo\n"}},
		{name: "no error keeps start and end", log: "start\n" + filler + "the end\n", focus: -1, want: []string{"start\n", truncatedMarker, "the end\n"}},
		{name: "one huge line", log: strings.Repeat("x", 3*limit), focus: -1, want: []string{truncatedMarker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateLog(tt.log, tt.focus, limit)
			requireEqual(t, len(got) <= limit, true, fmt.Sprintf("len %d <= %d", len(got), limit))
			requireEqual(t, strings.HasPrefix(tt.log, got[:min(len(got), 5)]), true, "keeps the start")
			if tt.wantAll {
				requireEqual(t, got, tt.log, "log")
			}
			for _, s := range tt.want {
				requireContains(t, got, s, "truncated log")
			}
		})
	}
}

func FuzzParseLog(f *testing.F) {
	for _, seed := range []string{
		logUndefined, logMissingPackage, logRunawayParagraph, logRunawayEOF, logPackageError,
		"", "!", "! ", "l.", "l.3", "a:1: b", "Runaway argument?\n! x\nl.2",
		"! Emergency stop.\nl.99999999999999999999 x\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, log string) {
		message, snippet, line := ParseLog(log)
		if line < 0 {
			t.Fatalf("line %d < 0", line)
		}
		if len(message) > maxMessageBytes || len(snippet) > maxSnippetBytes {
			t.Fatalf("message %d or snippet %d bytes over the caps", len(message), len(snippet))
		}
		e := parseLog(log)
		if e.offset < -1 || e.offset > len(log) {
			t.Fatalf("offset %d outside the log (%d bytes)", e.offset, len(log))
		}
		if got := truncateLog(log, e.offset, minMaxLog); len(got) > minMaxLog {
			t.Fatalf("truncated log has %d bytes, limit %d", len(got), minMaxLog)
		}
		// The log doubles as a source: locate must stay inside it or keep the line.
		le := &LatexError{Message: message, Snippet: snippet, Line: line}
		_ = locate(le, log)
		if n := strings.Count(log, "\n") + 1; le.Line != line && (le.Line < 1 || le.Line > n) {
			t.Fatalf("located line %d outside the source's %d lines", le.Line, n)
		}
	})
}
