package ai

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxReferenceBytes bounds the LaTeX of all references in one message; each of n
// references gets an equal share and is cut at a line end within it.
const MaxReferenceBytes = 48 << 10

// truncatedNote ends a reference cut to its share.
const truncatedNote = "% [truncated by sheetpipe: the document is longer]"

// Reference is a finished document a worksheet builds on: the final LaTeX of a
// job it depends on (for example the worksheet an answer key is for).
type Reference struct {
	JobID string
	Latex string
}

// referencesMessage is the part of a step message that carries refs, "" when
// there are none. The offline provider ignores it: its answers come from the
// request and outline alone, so they stay valid LaTeX whatever refs hold.
func referencesMessage(refs []Reference) string {
	if len(refs) == 0 {
		return ""
	}
	share := MaxReferenceBytes / len(refs)
	var b strings.Builder
	b.WriteString("\n\nThis worksheet builds on these finished documents; use them (their exercises, numbering and wording) wherever the request refers to them, and do not copy their preamble blindly:\n")
	for _, r := range refs {
		fmt.Fprintf(&b, "\n%s\n", block("DOCUMENT "+r.JobID, truncate(r.Latex, share)))
	}
	return b.String()
}

// truncate returns s when it fits in n bytes, else its longest prefix of whole
// lines (whole runes when the first line is longer) that fits with the note.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(truncatedNote)-1, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if nl := strings.LastIndexByte(s[:cut], '\n'); nl > 0 {
		cut = nl
	}
	return s[:cut] + "\n" + truncatedNote
}
