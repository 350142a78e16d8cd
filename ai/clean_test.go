package ai

import (
	"slices"
	"strings"
	"testing"
)

const doc = "\\documentclass{article}\n\\begin{document}\nHello\n\\end{document}"

func TestClean(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   string
	}{
		{"plain document", doc, doc},
		{"plain document with surrounding blank lines", "\n\n" + doc + "\n\n", doc},
		{"latex fence", "```latex\n" + doc + "\n```", doc},
		{"bare fence with prose before and after", "Sure! Here it is:\n```\n" + doc + "\n```\nLet me know if you need changes.", doc},
		{"prose without fences", "Here is your worksheet:\n" + doc + "\nHope this helps", doc},
		{"tilde fence", "~~~tex\n" + doc + "\n~~~", doc},
		{"crlf line endings", strings.ReplaceAll("```latex\n"+doc+"\n```", "\n", "\r\n"), doc},
		{"text after end document is dropped", doc + "\n\\documentclass{article}\\begin{document}again\\end{document}", doc},
		{"prose mentioning documentclass before the document", "It uses \\documentclass too:\n" + doc, doc},
		{"missing end document keeps the rest", "```latex\n\\documentclass{article}\n\\begin{document}\nHi\n```", "\\documentclass{article}\n\\begin{document}\nHi"},
		{"no documentclass, fenced", "```\nSection 1: fractions\nSection 2: decimals\n```", "Section 1: fractions\nSection 2: decimals"},
		{"no documentclass, plain", "  A worksheet outline.  \n", "A worksheet outline."},
		{"only fences", "```\n```", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clean(tt.answer); got != tt.want {
				t.Errorf("Clean(%q)\n got %q\nwant %q", tt.answer, got, tt.want)
			}
		})
	}
}

func TestEscapeLatex(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain text", "Fractions for grade 5", "Fractions for grade 5"},
		{"percent ampersand dollar", "50% & $5", `50\% \& \ensuremath{\$}5`},
		{"backslash command", `\input{/etc/passwd}`, `\textbackslash{}input\{/etc/passwd\}`},
		{"braces", "{x}", `\{x\}`},
		{"tilde and caret", "a~b^c", `a\textasciitilde{}b\textasciicircum{}c`},
		{"hash and underscore", "#1_x", `\#1\_x`},
		{"angle brackets and bar", "a<b>c|d", `a\textless{}b\textgreater{}c\textbar{}d`},
		{"line breaks and tabs become spaces", "a\nb\tc\r\nd", "a b c  d"},
		{"control and format characters dropped", "a\x00b\x1bc\u200bd\u202ee", "abcde"},
		{"invalid utf-8 dropped", "a\xffb", "ab"},
		{"latin letters kept", "Übung für Schüler", "Übung für Schüler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeLatex(tt.in); got != tt.want {
				t.Errorf("EscapeLatex(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   []string
	}{
		{"comma list", "math, fractions, grade 5", []string{"math", "fractions", "grade 5"}},
		{"label, case and duplicates", "Tags: Math, FRACTIONS, math, Grade  5.", []string{"math", "fractions", "grade 5"}},
		{"bulleted lines", "- math\n* fractions\n1. grade 5\n#worksheet", []string{"math", "fractions", "grade 5", "worksheet"}},
		{"quoted and fenced", "```\n\"math\"; 'fractions'\n```", []string{"math", "fractions"}},
		{"capped at eight", "a1,a2,a3,a4,a5,a6,a7,a8,a9,a10", []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}},
		{"long items dropped", "math, this is a whole sentence rather than a short tag at all", []string{"math"}},
		{"nothing usable", " , ,\n", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseTags(tt.answer); !slices.Equal(got, tt.want) {
				t.Errorf("parseTags(%q) = %q, want %q", tt.answer, got, tt.want)
			}
		})
	}
}

func TestCleanDescription(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   string
	}{
		{"plain", "Practises fractions for grade 5.", "Practises fractions for grade 5."},
		{"label and quotes", "Description: \"Practises fractions.\"", "Practises fractions."},
		{"multi-line collapsed", "Practises fractions.\n\nFor grade 5.", "Practises fractions. For grade 5."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanDescription(tt.answer); got != tt.want {
				t.Errorf("cleanDescription(%q) = %q, want %q", tt.answer, got, tt.want)
			}
		})
	}
}
