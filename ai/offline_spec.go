package ai

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// What the offline provider reads from a request: the topic, the number of
// exercises, the grade, word lists and a refinement's "harder", "easier",
// "more" and "fewer". A refined request is the first request followed by one
// "Refinement: <instruction>" line per refinement (offlineRefine).

const (
	// defaultExercises is the number of exercises when the request names none.
	defaultExercises = 10
	// maxExercises bounds the number of exercises a request can ask for.
	maxExercises = 100
	// countStep is how many exercises "more" adds and "fewer" removes.
	countStep = 5
	// maxWords bounds a word list taken from a request.
	maxWords = 100
	// refinementLabel starts each refinement line of a refined request.
	refinementLabel = "Refinement:"
)

// offlineSpec is what an offline worksheet is made of.
type offlineSpec struct {
	kind       kindInfo
	count      int      // exercises, 1..maxExercises
	grade      int      // 1..12, 0 when the request names none
	difficulty int      // 1 (easiest) and up: from the grade, then each harder/easier
	words      []string // the word list of a spelling or vocabulary sheet
}

var (
	countPattern = regexp.MustCompile(`(?i)\b(\d{1,4})\s+(?:[a-z-]+\s+){0,2}?(?:exercises?|questions?|problems?|items?|sums?|calculations?|words?)\b`)
	gradePattern = regexp.MustCompile(`(?i)\bgrade\s*(\d{1,2})\b|\b(\d{1,2})(?:st|nd|rd|th)[\s-]+grade\b`)
	wordsPattern = regexp.MustCompile(`(?i)\b(?:words?|spelling|vocabulary)\b(?:\s*(?:list|words?)\b)*\s*[:\-]?\s*`)
	// listSeparator splits a word list.
	listSeparator = regexp.MustCompile(`(?i)\s*,\s*|\s+and\s+`)
	// wordListEnd ends a word list: a sentence end, or a word that starts the
	// rest of the request ("... fish for grade 2").
	wordListEnd = regexp.MustCompile(`(?i)[.;!?]|\s(?:for|with|in|at|grade|please|level)\b`)
	harderWords = regexp.MustCompile(`(?i)\b(?:harder|more difficult|more challenging|tougher|advanced)\b`)
	easierWords = regexp.MustCompile(`(?i)\b(?:easier|simpler|less difficult|more basic)\b`)
	moreWords   = regexp.MustCompile(`(?i)\bmore\b`)
	fewerWords  = regexp.MustCompile(`(?i)\b(?:fewer|less|shorter)\b`)
)

// parseOffline reads request (which may carry refinement lines).
func parseOffline(request string) offlineSpec {
	base, refinements := splitRefinements(request)
	all := strings.ToLower(request)
	s := offlineSpec{kind: kindOf(all), count: defaultExercises, grade: gradeOf(all)}
	if n, ok := countOf(base); ok {
		s.count = n
	}
	if s.kind.words {
		s.words = wordListOf(request)
		if len(s.words) == 0 {
			s.words = defaultWords(s.grade)
		}
		if _, ok := countOf(base); !ok {
			s.count = len(s.words)
		}
	}
	s.difficulty = gradeDifficulty(s.grade)
	for _, r := range refinements {
		switch {
		case harderWords.MatchString(r):
			s.difficulty++
		case easierWords.MatchString(r):
			s.difficulty--
		case fewerWords.MatchString(r):
			s.count -= countStep
		case moreWords.MatchString(r):
			s.count += countStep
		}
		if n, ok := countOf(r); ok {
			s.count = n
		}
	}
	s.difficulty = max(1, s.difficulty)
	s.count = min(max(1, s.count), maxExercises)
	return s
}

// splitRefinements returns the request before its first refinement line and
// the instructions of the refinements, in order.
func splitRefinements(request string) (string, []string) {
	parts := strings.Split(request, refinementLabel)
	return parts[0], parts[1:]
}

func countOf(s string) (int, bool) {
	m := countPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

func gradeOf(s string) int {
	m := gradePattern.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1] + m[2])
	return min(max(n, 1), 12)
}

// gradeDifficulty is the starting difficulty for a grade (0: unknown).
func gradeDifficulty(grade int) int {
	switch {
	case grade == 0:
		return 2
	case grade <= 2:
		return 1
	case grade <= 4:
		return 2
	case grade <= 6:
		return 3
	case grade <= 8:
		return 4
	}
	return 5
}

// wordListOf returns the words listed after "words", "spelling" or
// "vocabulary" in request ("spelling words cat, dog and fish for grade 2"):
// the last such list (one with a comma, "and" or a colon), split at commas and
// "and", each item kept when it is one to three words of letters, without
// duplicates, at most maxWords.
func wordListOf(request string) []string {
	base, _ := splitRefinements(request)
	var list string
	for _, line := range strings.Split(base, "\n") {
		for _, loc := range wordsPattern.FindAllStringIndex(line, -1) {
			tail := line[loc[1]:]
			if end := wordListEnd.FindStringIndex(tail); end != nil {
				tail = tail[:end[0]]
			}
			if strings.Contains(line[loc[0]:loc[1]], ":") || listSeparator.MatchString(tail) {
				list = tail
			}
		}
	}
	var words []string
	seen := map[string]bool{}
	for _, item := range listSeparator.Split(list, -1) {
		item = strings.Join(strings.Fields(item), " ")
		if item == "" || len(strings.Fields(item)) > 3 || strings.ContainsFunc(item, notWordRune) {
			continue
		}
		key := strings.ToLower(item)
		if !seen[key] && len(words) < maxWords {
			seen[key] = true
			words = append(words, item)
		}
	}
	return words
}

// notWordRune reports whether r cannot be part of a listed word.
func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && r != ' ' && r != '-' && r != '\''
}

// defaultWords is a short list for a spelling or vocabulary request without one.
func defaultWords(grade int) []string {
	if grade >= 4 {
		return []string{"because", "different", "important", "question", "beautiful", "through",
			"believe", "favourite", "together", "surprise"}
	}
	return []string{"cat", "dog", "fish", "tree", "house", "apple", "green", "happy", "water", "friend"}
}

// exerciseCount is the number of exercises the worksheet has: count, or fewer
// when a word list has fewer word and format pairs.
func (s offlineSpec) exerciseCount() int {
	if s.kind.words {
		return min(s.count, len(s.words)*len(s.kind.wordFormats))
	}
	return s.count
}
