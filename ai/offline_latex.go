package ai

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"unicode"
)

// kindInfo is one kind of offline worksheet: arithmetic exercises drawn from
// gen, or, when words is set, exercises on a word list.
type kindInfo struct {
	title string // the worksheet's title, e.g. "Fractions"
	name  string // the exercises in the outline, e.g. "fraction"
	words bool   // spelling or vocabulary: exercises on the request's words
	// gen returns one exercise, in math mode, at difficulty d (1 and up).
	gen func(r *rand.Rand, d int) string
	// wordFormats render exercise format f (0 shows the word) on a word.
	wordFormats []func(r *rand.Rand, word string) string
}

// kinds in matching order: the first whose keyword the lowercased request
// contains wins; mixed is the fallback.
var kinds = []struct {
	keywords []string
	kind     kindInfo
}{
	{[]string{"spelling", "spell "}, kindInfo{title: "Spelling", name: "spelling", words: true, wordFormats: spellingFormats}},
	{[]string{"vocabulary"}, kindInfo{title: "Vocabulary", name: "vocabulary", words: true, wordFormats: vocabularyFormats}},
	{[]string{"fraction"}, kindInfo{title: "Fractions", name: "fraction", gen: fractions}},
	{[]string{"decimal"}, kindInfo{title: "Decimals", name: "decimal", gen: decimals}},
	{[]string{"percent", "%"}, kindInfo{title: "Percentages", name: "percentage", gen: percentages}},
	{[]string{"multipl", "times"}, kindInfo{title: "Multiplication", name: "multiplication", gen: multiplication}},
	{[]string{"divi"}, kindInfo{title: "Division", name: "division", gen: division}},
	{[]string{"subtract", "minus", "difference"}, kindInfo{title: "Subtraction", name: "subtraction", gen: subtraction}},
	{[]string{"addition", "adding", "sum", "plus"}, kindInfo{title: "Addition", name: "addition", gen: addition}},
	{[]string{"equation", "algebra", "missing"}, kindInfo{title: "Missing numbers", name: "missing-number", gen: missingNumber}},
}

var mixed = kindInfo{title: "Mixed arithmetic", name: "mixed arithmetic", gen: mixedArithmetic}

func kindOf(request string) kindInfo {
	t := strings.ToLower(request)
	for _, k := range kinds {
		for _, w := range k.keywords {
			if strings.Contains(t, w) {
				return k.kind
			}
		}
	}
	return mixed
}

// span is table[d-1], or beyond the table its last entry times 10 per level.
func span(d int, table ...int) int {
	if d <= len(table) {
		return table[max(d, 1)-1]
	}
	v := table[len(table)-1]
	for range d - len(table) {
		v *= 10
	}
	return v
}

// between returns a number in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

func addition(r *rand.Rand, d int) string {
	top := span(d, 20, 100, 1000, 10000, 100000)
	return fmt.Sprintf(`%d + %d =`, between(r, top/10, top), between(r, top/10, top))
}

func subtraction(r *rand.Rand, d int) string {
	top := span(d, 20, 100, 1000, 10000, 100000)
	a := between(r, top/2, top)
	return fmt.Sprintf(`%d - %d =`, a, between(r, 1, a-1))
}

// factors returns the ranges of a product's two factors at difficulty d.
func factors(d int) (aLo, aHi, bLo, bHi int) {
	switch d {
	case 1:
		return 2, 5, 2, 5
	case 2:
		return 2, 10, 2, 10
	case 3:
		return 3, 12, 11, 25
	case 4:
		return 11, 99, 11, 99
	}
	top := span(d, 999, 999, 999, 999, 999)
	return top / 10, top, 11, 99
}

func multiplication(r *rand.Rand, d int) string {
	aLo, aHi, bLo, bHi := factors(d)
	return fmt.Sprintf(`%d \times %d =`, between(r, aLo, aHi), between(r, bLo, bHi))
}

func division(r *rand.Rand, d int) string {
	aLo, aHi, bLo, bHi := factors(d)
	q, b := between(r, aLo, aHi), between(r, bLo, bHi)
	return fmt.Sprintf(`%d \div %d =`, q*b, b)
}

func fractions(r *rand.Rand, d int) string {
	den := span(d, 6, 10, 10, 12, 20)
	d1, d2 := between(r, 2, den), between(r, 2, den)
	if d <= 2 {
		d2 = d1
	}
	a, b := between(r, 1, d1-1), between(r, 1, d2-1)
	op := "+"
	if d >= 2 && r.IntN(2) == 0 {
		op = "-"
		if a*d2 < b*d1 {
			a, b, d1, d2 = b, a, d2, d1
		}
	}
	if d >= 5 {
		return fmt.Sprintf(`%d\frac{%d}{%d} %s \frac{%d}{%d} =`, between(r, 1, 9), a, d1, op, b, d2)
	}
	return fmt.Sprintf(`\frac{%d}{%d} %s \frac{%d}{%d} =`, a, d1, op, b, d2)
}

// decimal returns a number with places decimal places, the last one not 0,
// at most top.
func decimal(r *rand.Rand, top, places int) string {
	scale := 10
	if places == 2 {
		scale = 100
	}
	n := between(r, scale+1, top*scale)
	if n%10 == 0 {
		n++
	}
	return fmt.Sprintf("%d.%0*d", n/scale, places, n%scale)
}

func decimals(r *rand.Rand, d int) string {
	top := span(d, 10, 100, 100, 1000, 10000)
	places := 1
	if d >= 3 {
		places = 2
	}
	switch op := r.IntN(min(d+1, 3)); op {
	case 2:
		return fmt.Sprintf(`%s \times %d =`, decimal(r, top, places), between(r, 2, 9))
	case 1:
		a, b := decimal(r, top, places), decimal(r, top, places)
		if len(a) < len(b) || (len(a) == len(b) && a < b) {
			a, b = b, a
		}
		return fmt.Sprintf(`%s - %s =`, a, b)
	}
	return fmt.Sprintf(`%s + %s =`, decimal(r, top, places), decimal(r, top, places))
}

func percentages(r *rand.Rand, d int) string {
	var p int
	switch {
	case d == 1:
		p = []int{10, 25, 50, 75, 100}[r.IntN(5)]
	case d <= 3:
		p = 5 * between(r, 1, 19)
	default:
		p = between(r, 1, 99)
	}
	top := span(d, 10, 20, 50, 1000, 10000)
	n := 20 * between(r, 1, top)
	if d >= 4 {
		n = between(r, 100, top*10)
	}
	return fmt.Sprintf(`%d\%% \text{ of } %d =`, p, n)
}

func missingNumber(r *rand.Rand, d int) string {
	top := span(d, 20, 100, 1000, 10000, 100000)
	a, b := between(r, 2, top), between(r, 2, top)
	return fmt.Sprintf(`%d + \square = %d`, a, a+b)
}

func mixedArithmetic(r *rand.Rand, d int) string {
	gens := []func(*rand.Rand, int) string{addition, subtraction, multiplication, division, missingNumber}
	return gens[r.IntN(len(gens))](r, d)
}

var spellingFormats = []func(r *rand.Rand, w string) string{
	func(_ *rand.Rand, w string) string {
		return `Copy the word three times: \textbf{` + offlineText(w) + `}`
	},
	func(r *rand.Rand, w string) string { return `Unscramble the letters: \textbf{` + scramble(r, w) + `}` },
	func(_ *rand.Rand, w string) string { return `Fill in the missing letters: \textbf{` + gaps(w) + `}` },
}

var vocabularyFormats = []func(r *rand.Rand, w string) string{
	func(_ *rand.Rand, w string) string { return `Write what \textbf{` + offlineText(w) + `} means` },
	func(_ *rand.Rand, w string) string {
		return `Use \textbf{` + offlineText(w) + `} in a sentence of your own`
	},
	func(r *rand.Rand, w string) string { return `Unscramble the letters: \textbf{` + scramble(r, w) + `}` },
}

// scramble shuffles the letters of w, never returning w itself when another
// order exists.
func scramble(r *rand.Rand, w string) string {
	letters := []rune(strings.ToLower(w))
	orig := string(letters)
	for range 10 {
		r.Shuffle(len(letters), func(i, j int) { letters[i], letters[j] = letters[j], letters[i] })
		if string(letters) != orig {
			break
		}
	}
	return offlineText(string(letters))
}

// gaps hides every second letter of w behind an underscore.
func gaps(w string) string {
	letters := []rune(w)
	for i := 1; i < len(letters); i += 2 {
		if unicode.IsLetter(letters[i]) {
			letters[i] = '_'
		}
	}
	return offlineText(string(letters))
}

// offlineTitle names the worksheet as what it is: a placeholder.
func offlineTitle(k kindInfo) string {
	return k.title + " --- offline sample worksheet (no LLM configured)"
}

// offlineLatex renders the offline worksheet for request (with its
// refinements). The exercises are drawn from a generator seeded with a hash of
// request, so equal requests give equal documents, and none repeats. Only the
// base classes and amsmath, amssymb, geometry and fancyhdr are used; user text
// enters the document only through offlineText.
func offlineLatex(request string) string {
	spec := parseOffline(request)
	h := fnv.New64a()
	h.Write([]byte(request))
	seed := h.Sum64()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var items strings.Builder
	for _, ex := range exercises(r, spec) {
		fmt.Fprintf(&items, "  \\item %s \\answerline\n", ex)
	}
	level := fmt.Sprintf("Difficulty level %d", spec.difficulty)
	if spec.grade > 0 {
		level = fmt.Sprintf("Grade %d, difficulty level %d", spec.grade, spec.difficulty)
	}
	return fmt.Sprintf(offlineTemplate, EscapeLatex(offlineNote), offlineTitle(spec.kind),
		offlineText(topicOf(request)), level, offlineNotice, items.String())
}

// maxTries bounds the draws of one worksheet's arithmetic exercises; the
// difficulty rises every 20*count failed draws, so it is never reached.
const maxTries = 1 << 20

// exercises returns spec.count distinct exercises (fewer only when a word list
// has fewer word and format pairs). Arithmetic ones are drawn at the spec's
// difficulty; when its numbers run out of new exercises, the difficulty rises.
func exercises(r *rand.Rand, spec offlineSpec) []string {
	var out []string
	if spec.kind.words {
		words, formats := spec.words, spec.kind.wordFormats
		for i := range spec.exerciseCount() {
			out = append(out, formats[i/len(words)](r, words[i%len(words)]))
		}
		return out
	}
	seen := map[string]bool{}
	for tries := 0; len(out) < spec.count && tries < maxTries; tries++ {
		ex := "$" + spec.kind.gen(r, spec.difficulty+tries/(20*spec.count)) + "$"
		if !seen[ex] {
			seen[ex] = true
			out = append(out, ex)
		}
	}
	return out
}

// offlineText escapes user text for the offline document. Characters that
// pdflatex cannot typeset with the default OT1 fonts, or only with bitmap fonts
// generated at compile time, become "?"; spaces of any kind become " ".
func offlineText(s string) string {
	return EscapeLatex(strings.Map(func(r rune) rune {
		switch {
		case r < 0x80 || unicode.Is(unicode.Cf, r) || typesetRune(r):
			return r
		case unicode.IsSpace(r):
			return ' '
		}
		return '?'
	}, s))
}

// typesetRune reports whether pdflatex, with UTF-8 input and the default OT1
// font encoding of a basic TeX Live, typesets the non-ASCII rune r from its
// Type 1 fonts: the letters of Latin-1 and Latin Extended-A that OT1 has, ¡, ¿
// and typographic dashes and quotes. Symbols such as € ° © ½ × come from the
// TS1 companion fonts, which a basic TeX Live only has as METAFONT sources.
func typesetRune(r rune) bool {
	switch r {
	case '×', '÷', 'Ð', 'Þ', 'ð', 'þ', 'Ą', 'ą', 'Đ', 'đ', 'Ę', 'ę', 'Ħ', 'ħ', 'Į', 'į',
		'ĸ', 'Ŀ', 'ŀ', 'ŉ', 'Ŋ', 'ŋ', 'Ŧ', 'ŧ', 'Ų', 'ų', 'ſ':
		return false
	case '¡', '¿', '–', '—', '‘', '’', '“', '”', '…':
		return true
	}
	return r >= 0xC0 && r <= 0x17F
}

// offlineNotice says, under the title, where the sheet comes from (LaTeX).
const offlineNotice = `This is a placeholder made by sheetpipe's built-in offline generator, not by a language model. ` +
	`Set \texttt{OPENAI\_API\_KEY} or \texttt{OPENAI\_BASE\_URL} for real worksheets.`

// offlineTemplate takes the footer note, the title, the escaped request, the
// level line, the notice and the \item lines.
const offlineTemplate = `\documentclass[11pt,a4paper]{article}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{fancyhdr}
\pagestyle{fancy}
\fancyhf{}
\renewcommand{\headrulewidth}{0pt}
\fancyfoot[L]{\footnotesize %s}
\fancyfoot[R]{\footnotesize\thepage}
\setlength{\parindent}{0pt}
\newcommand{\answerline}{\quad\rule{4cm}{0.4pt}}
\begin{document}

\begin{center}
  {\LARGE\bfseries %s\par}
  \vspace{0.5em}
  {\small Request: %s\par}
  {\small %s\par}
\end{center}
\fbox{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule}{\small %s}}
\vspace{1em}

Name: \rule{7cm}{0.4pt}\hfill Date: \rule{4cm}{0.4pt}

\vspace{1.5em}
\textbf{Instructions.} Solve each exercise. Write your answer on the line and
show your working in the space below it.

\vspace{1em}
\begin{enumerate}
  \setlength{\itemsep}{2.2em}
%s\end{enumerate}

\end{document}
`
