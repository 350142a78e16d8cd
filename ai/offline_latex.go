package ai

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"unicode"
)

// offlineExercises is the number of exercises on an offline worksheet.
const offlineExercises = 10

// exerciseKind renders one exercise, in math mode, from a random source.
type exerciseKind func(r *rand.Rand) string

// exerciseSet is the exercises an offline worksheet draws from.
type exerciseSet struct {
	name  string
	kinds []exerciseKind
}

func addition(r *rand.Rand) string {
	return fmt.Sprintf(`%d + %d =`, 10+r.IntN(90), 10+r.IntN(90))
}

func subtraction(r *rand.Rand) string {
	a, b := 20+r.IntN(80), 1+r.IntN(19)
	return fmt.Sprintf(`%d - %d =`, a, b)
}

func multiplication(r *rand.Rand) string {
	return fmt.Sprintf(`%d \times %d =`, 2+r.IntN(11), 2+r.IntN(11))
}

func division(r *rand.Rand) string {
	b := 2 + r.IntN(11)
	return fmt.Sprintf(`%d \div %d =`, b*(2+r.IntN(11)), b)
}

func fractions(r *rand.Rand) string {
	d := 3 + r.IntN(10)
	a, b := 1+r.IntN(d-1), 1+r.IntN(d-1)
	return fmt.Sprintf(`\frac{%d}{%d} + \frac{%d}{%d} =`, a, d, b, d)
}

func missingNumber(r *rand.Rand) string {
	a, b := 2+r.IntN(30), 2+r.IntN(30)
	return fmt.Sprintf(`%d + \square = %d`, a, a+b)
}

// exerciseSets in matching order: the first whose keyword the topic contains
// wins; mixedArithmetic is the fallback.
var exerciseSets = []struct {
	keywords []string
	set      exerciseSet
}{
	{[]string{"fraction"}, exerciseSet{"fraction addition", []exerciseKind{fractions}}},
	{[]string{"multipl", "times"}, exerciseSet{"multiplication", []exerciseKind{multiplication}}},
	{[]string{"divi"}, exerciseSet{"division", []exerciseKind{division}}},
	{[]string{"subtract", "minus", "difference"}, exerciseSet{"subtraction", []exerciseKind{subtraction}}},
	{[]string{"addition", "adding", "sum", "plus"}, exerciseSet{"addition", []exerciseKind{addition}}},
	{[]string{"equation", "algebra", "missing"}, exerciseSet{"missing-number", []exerciseKind{missingNumber}}},
}

var mixedArithmetic = exerciseSet{"mixed arithmetic", []exerciseKind{
	addition, subtraction, multiplication, division, missingNumber,
}}

func exerciseKindsFor(topic string) exerciseSet {
	t := strings.ToLower(topic)
	for _, s := range exerciseSets {
		for _, k := range s.keywords {
			if strings.Contains(t, k) {
				return s.set
			}
		}
	}
	return mixedArithmetic
}

// offlineLatex renders the offline worksheet for topic. The exercises are
// drawn from a generator seeded with a hash of topic, so equal topics give equal
// documents. Only the base classes and amsmath, amssymb, geometry and fancyhdr
// are used; the topic enters the document only through offlineText.
func offlineLatex(topic string) string {
	h := fnv.New64a()
	h.Write([]byte(topic))
	seed := h.Sum64()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	set := exerciseKindsFor(topic)

	var items strings.Builder
	for range offlineExercises {
		kind := set.kinds[r.IntN(len(set.kinds))]
		fmt.Fprintf(&items, "  \\item $%s$ \\answerline\n", kind(r))
	}
	return fmt.Sprintf(offlineTemplate, EscapeLatex(offlineNote), offlineText(topic), items.String())
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

// offlineTemplate takes the footer note, the escaped title and the \item lines.
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
\end{center}
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
