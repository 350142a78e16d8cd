package ai

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// latexEscapes maps each LaTeX special character to its text-mode form. < > |
// are included because the default OT1 font encoding prints other glyphs for
// them. $ is the math-mode dollar: the text-mode \$ needs the TS1 fonts, which
// a basic TeX Live only has as METAFONT sources.
var latexEscapes = map[rune]string{
	'\\': `\textbackslash{}`,
	'{':  `\{`,
	'}':  `\}`,
	'$':  `\ensuremath{\$}`,
	'&':  `\&`,
	'#':  `\#`,
	'^':  `\textasciicircum{}`,
	'_':  `\_`,
	'%':  `\%`,
	'~':  `\textasciitilde{}`,
	'<':  `\textless{}`,
	'>':  `\textgreater{}`,
	'|':  `\textbar{}`,
}

// EscapeLatex makes s safe to include as text in a LaTeX document: it escapes
// \ { } $ & # ^ _ % ~ (and < > |), turns tabs and line breaks into spaces, and
// drops other control characters, format characters (zero-width and bidi
// controls) and invalid UTF-8. It does not transliterate other Unicode:
// pdflatex's UTF-8 input handles the Latin scripts.
func EscapeLatex(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
		case latexEscapes[r] != "":
			b.WriteString(latexEscapes[r])
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isInvalidAt reports whether s holds an invalid UTF-8 byte at i.
func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}
