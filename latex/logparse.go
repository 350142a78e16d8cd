package latex

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// snippetLines is how far past the error line the snippet looks for TeX's
	// "l.NN" context line.
	snippetLines = 16
	// tailLines is the size of the snippet when no error is recognised.
	tailLines       = 20
	maxSnippetBytes = 4 << 10
	maxMessageBytes = 1000
	truncatedMarker = "\n[... log truncated ...]\n"
)

var (
	// fileLineRE matches a -file-line-error error: "./main.tex:12: Message".
	fileLineRE = regexp.MustCompile(`^([^\s:]+):(\d+): (\S.*)$`)
	// bangRE matches a classic error, "! Message", and "!pdfTeX error: ...".
	bangRE = regexp.MustCompile(`^! ?(\S.*)$`)
	// contextRE matches TeX's context line "l.12 \foo".
	contextRE = regexp.MustCompile(`^l\.(\d+)(?: |$)`)
	// packageErrorRE matches the start of a package's or class's error message;
	// its continuation lines start with "(name)".
	packageErrorRE = regexp.MustCompile(`^(?:Package|Class) (\S+) Error: `)
)

// logError is the first error of a log.
type logError struct {
	message string
	snippet string
	line    int // main.tex line, 0 if unknown
	offset  int // byte offset of the snippet in the log, -1 if no error
}

// ParseLog finds the first error in a pdflatex log, in either the classic form
// ("! Undefined control sequence." then "l.12 \foo") or the -file-line-error
// form ("./main.tex:12: Undefined control sequence."). "Emergency stop." only
// counts when there is no other error, and a preceding "Runaway argument?" is
// kept in the snippet. line is the main.tex line of the error, 0 when unknown
// or in another file (a package). When no error is found, message is "" and
// snippet holds the log's last lines.
func ParseLog(log string) (message, snippet string, line int) {
	e := parseLog(log)
	return e.message, e.snippet, e.line
}

// logLine is a log line recognised as an error.
type logLine struct {
	index   int
	message string
	file    string // "" in the classic form
	line    int
}

func parseLog(log string) logError {
	raw := strings.Split(log, "\n")
	lines := make([]string, len(raw))
	for i, l := range raw {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	found, ok := firstError(lines)
	if !ok {
		return logError{snippet: tailOf(lines), offset: -1}
	}
	start := found.index
	for back := 1; back <= 2 && found.index-back >= 0; back++ {
		if lines[found.index-back] == "Runaway argument?" {
			start = found.index - back
		}
	}
	end, ctxIndex, ctxLine := snippetEnd(lines, found.index)
	line := 0
	switch {
	case found.file != "":
		if isMain(found.file) {
			line = found.line
		}
	case ctxIndex > 0 && contextInMain(lines[found.index+1:ctxIndex]):
		line = ctxLine
	}
	offset := 0
	for _, l := range raw[:start] {
		offset += len(l) + 1
	}
	message := withContinuation(found.message, lines[found.index+1:])
	if missing, ok := missingFile(message); ok {
		message = missing.String()
	}
	return logError{
		message: clipHead(message, maxMessageBytes),
		snippet: clipHead(strings.TrimRight(strings.Join(lines[start:end], "\n"), " \n"), maxSnippetBytes),
		line:    line,
		offset:  offset,
	}
}

// withContinuation appends to a package's or class's error message the
// continuation lines that follow it ("(babel)   or the language ..."), so
// that a message TeX wraps is not cut mid-sentence.
func withContinuation(message string, next []string) string {
	m := packageErrorRE.FindStringSubmatch(message)
	if m == nil {
		return message
	}
	prefix := "(" + m[1] + ")"
	var b strings.Builder
	b.WriteString(message)
	for _, l := range next {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok || b.Len() > maxMessageBytes {
			break
		}
		if rest = strings.TrimSpace(rest); rest != "" {
			b.WriteString(" " + rest)
		}
	}
	return b.String()
}

// firstError returns the first error line, preferring any real error to
// "Emergency stop." (which follows e.g. a missing-file error).
func firstError(lines []string) (logLine, bool) {
	var emergency *logLine
	for i, l := range lines {
		found, ok := matchError(i, l)
		switch {
		case !ok:
		case found.message != "Emergency stop.":
			return found, true
		case emergency == nil:
			emergency = &found
		}
	}
	if emergency != nil {
		return *emergency, true
	}
	return logLine{}, false
}

func matchError(i int, l string) (logLine, bool) {
	if !strings.HasPrefix(l, "!") && !strings.Contains(l, ": ") {
		return logLine{}, false
	}
	if m := fileLineRE.FindStringSubmatch(l); m != nil {
		return logLine{index: i, message: strings.TrimSpace(m[3]), file: m[1], line: atoi(m[2])}, true
	}
	if m := bangRE.FindStringSubmatch(l); m != nil && !strings.HasPrefix(m[1], "==>") {
		return logLine{index: i, message: strings.TrimSpace(m[1])}, true
	}
	return logLine{}, false
}

// snippetEnd returns the end (exclusive) of the snippet starting at the error
// line i: just past the line after TeX's "l.NN" context line, or at the memory
// statistics, or snippetLines on. ctxIndex is the index of the context line
// (0 if none) and ctxLine its number.
func snippetEnd(lines []string, i int) (end, ctxIndex, ctxLine int) {
	limit := min(len(lines), i+1+snippetLines)
	for j := i + 1; j < limit; j++ {
		if strings.HasPrefix(lines[j], "Here is how much of TeX's memory") {
			return j, 0, 0
		}
		if m := contextRE.FindStringSubmatch(lines[j]); m != nil {
			return min(len(lines), j+2), j, atoi(m[1])
		}
	}
	return limit, 0, 0
}

// contextInMain reports whether the "l.NN" line after a classic error belongs
// to main.tex: true unless a -file-line-error line in between (such as the
// "Emergency stop." after a missing file) names another file.
func contextInMain(between []string) bool {
	for _, l := range between {
		if m := fileLineRE.FindStringSubmatch(l); m != nil {
			return isMain(m[1])
		}
	}
	return true
}

func isMain(file string) bool {
	return file == sourceName || file == "./"+sourceName
}

// tailOf returns the last tailLines non-trailing-blank lines, at most
// maxSnippetBytes of them.
func tailOf(lines []string) string {
	n := len(lines)
	for n > 0 && strings.TrimSpace(lines[n-1]) == "" {
		n--
	}
	s := strings.Join(lines[max(0, n-tailLines):n], "\n")
	if len(s) <= maxSnippetBytes {
		return s
	}
	cut := len(s) - maxSnippetBytes
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return s[cut:]
}

// atoi parses a line number; one that does not fit an int is unknown (0).
func atoi(digits string) int {
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0
	}
	return n
}

// clipHead returns at most n bytes of s, cut on a rune boundary.
func clipHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncateLog returns log cut to at most limit bytes. It keeps the start, and
// the region from a little before focus (the first error's offset; -1 for
// none, meaning the end matters most), on line boundaries where it can.
func truncateLog(log string, focus, limit int) string {
	if len(log) <= limit {
		return log
	}
	if focus >= 0 && focus+limit/4 <= limit {
		return cutAfterLastNewline(log[:limit])
	}
	tailStart := len(log) - limit/2
	if focus >= 0 {
		tailStart = focus - limit/8
	}
	if i := strings.IndexByte(log[tailStart:], '\n'); i >= 0 && tailStart > 0 && log[tailStart-1] != '\n' {
		tailStart += i + 1
	}
	tail := log[tailStart:min(len(log), tailStart+limit/2)]
	head := cutAfterLastNewline(log[:min(tailStart, limit-len(tail)-len(truncatedMarker))])
	return strings.TrimSuffix(head, "\n") + truncatedMarker + tail
}

// cutAfterLastNewline drops a trailing partial line, unless s is one line.
func cutAfterLastNewline(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s
}
