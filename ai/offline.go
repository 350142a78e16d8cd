package ai

import (
	"fmt"
	"strings"
	"unicode"
)

// Offline provider: deterministic answers computed from the user's request, so
// the pipeline runs end to end without a model. The LaTeX document itself is
// rendered in offline_latex.go.

const (
	// offlineNote labels everything the offline provider produces.
	offlineNote = "Generated offline by sheetpipe (no LLM configured)"
	// genericTopic stands in for a request the offline provider cannot recover.
	genericTopic = "Practice worksheet"
	// maxTopicRunes bounds the title derived from a request.
	maxTopicRunes = 100
	// topicLabel starts the outline line that carries the topic.
	topicLabel = "Topic:"
)

// topicOf reduces a request to a one-line title of at most maxTopicRunes runes,
// or genericTopic when it is blank. It is idempotent.
func topicOf(request string) string {
	t := strings.Join(strings.Fields(request), " ")
	if t == "" {
		return genericTopic
	}
	if r := []rune(t); len(r) > maxTopicRunes {
		t = strings.TrimSpace(string(r[:maxTopicRunes-3])) + "..."
	}
	return t
}

// latestRequest returns the user's request from the latest design turn in
// history (the text between requestBegin and requestEnd), or "".
func latestRequest(history []Turn) string {
	for i := len(history) - 1; i >= 0; i-- {
		t := history[i]
		if t.Role != RoleUser {
			continue
		}
		_, rest, ok := strings.Cut(t.Content, requestBegin)
		if !ok {
			continue
		}
		if end := strings.LastIndex(rest, requestEnd); end >= 0 {
			return strings.TrimSpace(rest[:end])
		}
	}
	return ""
}

// requestFor returns the request an offline document is made for: the latest
// request in history, else the outline's "Topic:" line, else its first line.
func requestFor(design string, history []Turn) string {
	if req := latestRequest(history); req != "" {
		return req
	}
	first := ""
	for line := range strings.Lines(design) {
		line = strings.TrimSpace(line)
		if t, ok := strings.CutPrefix(line, topicLabel); ok {
			return strings.TrimSpace(t)
		}
		if first == "" {
			first = line
		}
	}
	return first
}

func offlineDesign(prompt string) string {
	spec := parseOffline(prompt)
	words := ""
	if spec.kind.words {
		words = "\nWords: " + strings.Join(spec.words, ", ")
	}
	return fmt.Sprintf(`%s %s
Title: %s
Audience: %s
Sections:
1. Header: the title, name and date lines
2. Instructions: one short paragraph
3. Exercises: %d numbered %s exercises, difficulty level %d, each with an answer line%s
Layout: one column, space for working after each exercise
Note: %s`, topicLabel, topicOf(prompt), offlineTitle(spec.kind), audience(spec.grade), spec.count, spec.kind.name,
		spec.difficulty, words, offlineNote)
}

func audience(grade int) string {
	if grade == 0 {
		return "as given in the request"
	}
	return fmt.Sprintf("grade %d", grade)
}

func offlineRefine(previous, instruction string) string {
	return strings.TrimSpace(previous + "\n" + refinementLabel + " " + strings.TrimSpace(instruction))
}

func offlineDescription(request string) string {
	spec := parseOffline(request)
	return fmt.Sprintf("An offline sample %s worksheet (no LLM configured) for: %s. It has %d numbered exercises with space for the answers.",
		strings.ToLower(spec.kind.title), strings.TrimRight(topicOf(request), "."), spec.exerciseCount())
}

// stopWords are left out of offline tags.
var stopWords = map[string]bool{
	"about": true, "and": true, "are": true, "create": true, "each": true, "for": true,
	"from": true, "generate": true, "into": true, "make": true, "please": true,
	"some": true, "that": true, "the": true, "this": true, "using": true, "with": true,
	"write": true, "worksheet": true, "refinement": true,
}

// offlineTags returns up to five content words of the request plus fixed tags,
// as a comma-separated list.
func offlineTags(request string) string {
	words := strings.FieldsFunc(strings.ToLower(request), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	tags := make([]string, 0, maxTags)
	seen := make(map[string]bool)
	for _, w := range words {
		if len(tags) == maxTags-3 {
			break
		}
		if len([]rune(w)) >= 3 && !stopWords[w] && !seen[w] {
			seen[w] = true
			tags = append(tags, w)
		}
	}
	tags = append(tags, "worksheet", "printable", "offline")
	return strings.Join(tags, ", ")
}
