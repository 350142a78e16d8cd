package ai

import (
	"regexp"
	"strings"
)

const (
	beginDocumentClass = `\documentclass`
	endDocument        = `\end{document}`
)

// fenceLine matches a markdown code fence line: ``` or ~~~, optionally with a
// language tag such as "latex".
var fenceLine = regexp.MustCompile("^(`{3,}|~{3,})\\s*[\\w+-]*\\s*$")

// Clean extracts the usable part of a model's answer. When the answer contains
// \documentclass it returns the document from \documentclass to the first
// \end{document} after it (where TeX stops reading), dropping markdown fences
// and any prose around it; otherwise it returns the answer without fence lines,
// trimmed.
func Clean(answer string) string {
	s := strings.ReplaceAll(answer, "\r\n", "\n")
	start := documentStart(s)
	if start < 0 {
		return stripFences(s)
	}
	s = s[start:]
	if end := strings.Index(s, endDocument); end >= 0 {
		return s[:end+len(endDocument)]
	}
	return stripFences(s)
}

// documentStart returns the index of the \documentclass that starts a line, else
// of the first \documentclass anywhere, else -1.
func documentStart(s string) int {
	offset := 0
	for line := range strings.SplitAfterSeq(s, "\n") {
		if trimmed := strings.TrimLeft(line, " \t"); strings.HasPrefix(trimmed, beginDocumentClass) {
			return offset + len(line) - len(trimmed)
		}
		offset += len(line)
	}
	return strings.Index(s, beginDocumentClass)
}

// stripFences drops markdown fence lines and trims the result.
func stripFences(s string) string {
	lines := strings.Split(s, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if !fenceLine.MatchString(strings.TrimSpace(l)) {
			kept = append(kept, l)
		}
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

// cleanDescription reduces an answer to one line of plain text: fences, a
// "Description:" label and surrounding quotes removed, whitespace collapsed.
func cleanDescription(answer string) string {
	s := strings.Join(strings.Fields(Clean(answer)), " ")
	s = trimLabel(s, "description:")
	return strings.TrimSpace(strings.Trim(s, "\"'`“”‘’"))
}

// trimLabel removes a case-insensitive leading label such as "Tags:".
func trimLabel(s, label string) string {
	if len(s) >= len(label) && strings.EqualFold(s[:len(label)], label) {
		return strings.TrimSpace(s[len(label):])
	}
	return s
}

// maxTags and maxTagLen bound what parseTags keeps.
const (
	maxTags   = 8
	maxTagLen = 40
)

// listMarker matches a bullet or number in front of a list item.
var listMarker = regexp.MustCompile(`^(?:[-*•#]+|\d+[.)])\s*`)

// parseTags splits a comma-, semicolon- or newline-separated list into at most
// 8 lowercase tags, without list markers, quotes or duplicates. Items longer
// than 40 bytes are not tags and are dropped.
func parseTags(answer string) []string {
	s := trimLabel(strings.TrimSpace(Clean(answer)), "tags:")
	items := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' })
	tags := make([]string, 0, maxTags)
	seen := make(map[string]bool)
	for _, item := range items {
		tag := listMarker.ReplaceAllString(strings.TrimSpace(item), "")
		tag = strings.Trim(tag, "\"'`“”‘’. ")
		tag = strings.ToLower(strings.Join(strings.Fields(tag), " "))
		if tag == "" || len(tag) > maxTagLen || seen[tag] {
			continue
		}
		seen[tag] = true
		tags = append(tags, tag)
		if len(tags) == maxTags {
			break
		}
	}
	return tags
}

// cleanTags is the Reply.Text of GenerateTags: the parsed tags joined by ", ".
func cleanTags(answer string) string { return strings.Join(parseTags(answer), ", ") }
