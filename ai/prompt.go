package ai

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Delimiters around the user-supplied text embedded in step messages. The
// offline provider finds the latest request in a history by them.
const (
	requestBegin = "----- BEGIN REQUEST -----"
	requestEnd   = "----- END REQUEST -----"
)

// block frames text between "----- BEGIN <name> -----" and "----- END <name> -----",
// without its leading blank lines and trailing white space.
func block(name, text string) string {
	text = strings.TrimLeft(strings.TrimRightFunc(text, unicode.IsSpace), "\r\n")
	return fmt.Sprintf("----- BEGIN %s -----\n%s\n----- END %s -----", name, text, name)
}

func designMessage(prompt string) string {
	return `Plan a printable worksheet for the request below. Do not write LaTeX yet.

` + block("REQUEST", prompt) + `

Answer with a plain-text outline only (no LaTeX, no markdown fences), listing:
- the title;
- the audience (grade or level) and the subject, as the request gives them;
- the sections in order, each with its exercise type, number of exercises and difficulty;
- layout notes: answer space, columns, tables.
Use only information from the request. Where it is silent, choose sensible generic defaults; never invent facts, statistics or names of real people.`
}

func latexMessage(design string) string {
	return `Write the worksheet described by this outline as a complete LaTeX document.

` + block("OUTLINE", design) + `

Answer with the LaTeX source only: exactly one complete document from \documentclass to \end{document} that compiles with pdflatex and uses only the allowed packages. Include the title, name and date lines, short instructions, the numbered exercises and space for the answers. No explanations, no markdown fences.`
}

// fixContext is how many source lines fixMessage shows on each side of the error.
const fixContext = 8

func fixMessage(latex string, e LatexErrorInfo, tex TeX) string {
	var b strings.Builder
	b.WriteString("The LaTeX document below failed to compile with pdflatex. Fix it.\n\n")
	fmt.Fprintf(&b, "Error: %s\n", strings.TrimSpace(e.Message))
	if advice := missingAdvice(e.Message, tex); advice != "" {
		b.WriteString(advice + "\n")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "Line: %d\n", e.Line)
	} else {
		b.WriteString("Line: unknown\n")
	}
	if s := strings.TrimSpace(e.Snippet); s != "" {
		b.WriteString("\n" + block("LOG EXCERPT", s) + "\n")
	}
	if src := numberedLines(latex, e.Line, fixContext); src != "" {
		fmt.Fprintf(&b, "\nSource around line %d (the error line is marked >>):\n%s\n", e.Line,
			block("SOURCE LINES", src))
	}
	b.WriteString("\nFull document:\n" + block("LATEX", latex) + "\n\n")
	b.WriteString(`Answer with the complete corrected document only, from \documentclass to \end{document}: LaTeX only, no explanations, no markdown fences. Keep the content and layout; change only what is needed to fix this error and any similar error, and use only the allowed packages.`)
	return b.String()
}

// numberedLines returns the lines of src from line-around to line+around,
// each prefixed with its 1-based number, the line itself marked ">>". It returns
// "" when line is outside src.
func numberedLines(src string, line, around int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	from, to := max(1, line-around), min(len(lines), line+around)
	width := len(strconv.Itoa(to))
	var b strings.Builder
	for n := from; n <= to; n++ {
		mark := "  "
		if n == line {
			mark = ">>"
		}
		fmt.Fprintf(&b, "%s %*d | %s\n", mark, width, n, strings.TrimRight(lines[n-1], "\r"))
	}
	return strings.TrimRight(b.String(), "\n")
}

func refineMessage(instruction string) string {
	return `The user wants to change the worksheet:

` + block("INSTRUCTION", instruction) + `

Rewrite the worksheet request so that it includes this change: one complete, self-contained request in plain text that keeps everything from the earlier request the change does not affect. Answer with the revised request only: no outline, no LaTeX, no explanations, no markdown fences.`
}

func descriptionMessage(latex string) string {
	return `Describe the worksheet below for a catalogue in one or two plain-text sentences: what it practises and for whom.

` + block("LATEX", latex) + `

Answer with the description only: plain text, no LaTeX, no quotes, no markdown.`
}

func tagsMessage(latex string) string {
	return `Give 3 to 8 short lowercase tags for the worksheet below (subject, topic, skill, grade level).

` + block("LATEX", latex) + `

Answer with the tags only, as one comma-separated line, for example: math, fractions, grade 5.`
}
