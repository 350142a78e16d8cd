package latex

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// lookBack bounds how many source lines locate searches above pdflatex's line.
const lookBack = 40

var (
	// endedByDocumentRE matches an environment left open to the end.
	endedByDocumentRE = regexp.MustCompile(`\\begin\{[^}]*\} on input line (\d+) ended by \\end\{document\}`)
	// oneArgFracRE matches a \frac whose second argument is missing: its first
	// argument is followed by something that cannot start one.
	oneArgFracRE = regexp.MustCompile(`\\[dt]?frac\s*\{[^{}]*\}\s*(?:$|\$|\}|&|\\\]|\\\)|\\end\b|\\\\)`)
	// listBeginRE matches the start of an environment whose body must begin
	// with an item command.
	listBeginRE = regexp.MustCompile(`\\begin\{(?:[a-z]*(?:enumerate|itemize|description)\*?|questions|parts|subparts|subsubparts|choices|oneparchoices|checkboxes|oneparcheckboxes|tasks)\}`)
	// itemRE matches a command that starts an item of such an environment.
	itemRE = regexp.MustCompile(`^\\(?:item|question|titledquestion|bonusquestion|part|subpart|subsubpart|choice|CorrectChoice|task)\b`)
)

// locate moves a document error's line to where the mistake is in source for
// the errors pdflatex reports elsewhere: TeX reads ahead, so it blames the
// line after a \usepackage of a missing package, the paragraph end after a
// runaway argument or an unclosed $, the \item after stray text at the start
// of a list, the line closing a display after a one-argument \frac, and the
// \end{document} of an environment left open. Other errors keep pdflatex's
// line. err is returned, its *LatexError updated in place.
func locate(err error, source string) error {
	var le *LatexError
	if !errors.As(err, &le) || le.cause != nil {
		return err
	}
	lines := strings.Split(source, "\n")
	for i, l := range lines {
		lines[i] = stripComment(strings.TrimSuffix(l, "\r"))
	}
	if n := mistakeLine(le, lines); n > 0 && n <= len(lines) {
		le.Line = n
	}
	return err
}

// mistakeLine returns the 1-based line of le's mistake in lines, or 0 to keep
// pdflatex's.
func mistakeLine(le *LatexError, lines []string) int {
	at := le.Line
	if at < 1 || at > len(lines) {
		at = len(lines)
	}
	if m, ok := ParseMissing(le.Message); ok {
		return missingLine(m, lines, at)
	}
	if text, ok := runawayText(le.Snippet); ok {
		return runawayLine(text, lines, at)
	}
	switch {
	case strings.Contains(le.Message, `perhaps a missing \item`):
		return strayTextLine(lines, at)
	case le.Message == "Missing $ inserted." && strings.TrimSpace(lines[at-1]) == "":
		return openDollarLine(lines, at)
	case le.Message == "Missing } inserted." || le.Message == "Missing { inserted.":
		return backUntilBlank(lines, at, 5, oneArgFracRE.MatchString)
	case strings.HasPrefix(le.Message, "File ended while scanning use of "):
		cs := strings.TrimSuffix(strings.TrimPrefix(le.Message, "File ended while scanning use of "), " .")
		return lastLineWith(lines, len(lines), len(lines), func(l string) bool { return strings.Contains(l, cs+"{") })
	}
	if m := endedByDocumentRE.FindStringSubmatch(le.Message); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// missingLine returns the last line at or above at that names m: the
// \usepackage, \documentclass, \usetikzlibrary or \input, or the babel option.
func missingLine(m Missing, lines []string, at int) int {
	if m.Kind == MissingLanguage { // babel reports no main.tex line: search the preamble
		at = len(lines)
		for i, l := range lines {
			if strings.Contains(l, `\begin{document}`) {
				at = i + 1
				break
			}
		}
	}
	return lastLineWith(lines, at, len(lines), func(l string) bool { return containsWord(l, m.Name) })
}

// containsWord reports whether name occurs in l with no name character
// (letter, digit, @, _ or -) on either side.
func containsWord(l, name string) bool {
	if name == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(l[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !isNameByte(l[start-1])) && (end == len(l) || !isNameByte(l[end])) {
			return true
		}
		i = start + 1
	}
}

func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '@' || b == '_' || b == '-'
}

// runawayText returns the argument TeX shows after "Runaway argument?".
func runawayText(snippet string) (string, bool) {
	rest, ok := strings.CutPrefix(snippet, "Runaway argument?\n")
	if !ok {
		return "", false
	}
	text, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(text), strings.TrimSpace(text) != ""
}

// runawayLine returns the line where the runaway argument starts: the last
// line at or above at holding its opening brace and first word.
func runawayLine(text string, lines []string, at int) int {
	brace := strings.HasPrefix(text, "{")
	fields := strings.Fields(strings.TrimPrefix(text, "{"))
	if len(fields) == 0 {
		return 0
	}
	first := fields[0]
	if brace {
		if n := lastLineWith(lines, at, lookBack, func(l string) bool { return strings.Contains(l, "{"+first) }); n > 0 {
			return n
		}
	}
	return lastLineWith(lines, at, lookBack, func(l string) bool { return strings.Contains(l, first) })
}

// strayTextLine returns the line of text between the start of a list and
// its first item, which TeX only notices at that item.
func strayTextLine(lines []string, at int) int {
	for i := at - 1; i >= max(1, at-lookBack); i-- {
		l := strings.TrimSpace(lines[i-1])
		switch {
		case listBeginRE.MatchString(l):
			after := listBeginRE.FindStringIndex(l)[1]
			if text := strings.TrimSpace(stripOptions(l[after:])); text != "" {
				return i
			}
			for j := i + 1; j < at; j++ {
				if strings.TrimSpace(lines[j-1]) != "" {
					return j
				}
			}
			return 0
		case itemRE.MatchString(l) || strings.Contains(l, `\end{`):
			return 0
		}
	}
	return 0
}

// stripOptions drops a leading [...] (a list's options) from s.
func stripOptions(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return s
	}
	if end := strings.IndexByte(s, ']'); end >= 0 {
		return s[end+1:]
	}
	return s
}

// openDollarLine returns the last line of the paragraph ending at at whose
// unescaped $ signs are odd in number: the math TeX ended at the paragraph.
func openDollarLine(lines []string, at int) int {
	return backUntilBlank(lines, at-1, lookBack, func(l string) bool {
		return strings.Count(strings.ReplaceAll(l, `\$`, ""), "$")%2 == 1
	})
}

// backUntilBlank returns the first line from at upwards, at most n lines and
// not past a blank line, for which match holds; 0 if none.
func backUntilBlank(lines []string, at, n int, match func(string) bool) int {
	for i := at; i >= max(1, at-n); i-- {
		l := lines[i-1]
		if match(l) {
			return i
		}
		if strings.TrimSpace(l) == "" && i != at {
			return 0
		}
	}
	return 0
}

// lastLineWith returns the last line at or above at, at most n lines up, for
// which match holds; 0 if none.
func lastLineWith(lines []string, at, n int, match func(string) bool) int {
	for i := at; i >= max(1, at-n); i-- {
		if match(lines[i-1]) {
			return i
		}
	}
	return 0
}

// stripComment drops a TeX comment: from the first % not escaped by a
// backslash.
func stripComment(l string) string {
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '\\':
			i++
		case '%':
			return l[:i]
		}
	}
	return l
}
