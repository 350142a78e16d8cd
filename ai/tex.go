package ai

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TeX is what the compiler can load, as the prompts name it: the installed
// packages, document classes and babel languages among those worksheets use,
// and the packages worksheets reach for that are not installed. sheetd fills
// it from latex.TakeInventory; the zero value stands for a basic TeX Live
// (basePackages, article).
type TeX struct {
	Packages  []string // e.g. "enumitem", "tikz"
	Classes   []string // e.g. "article", "exam"
	Languages []string // babel languages, e.g. "french"
	Absent    []string // packages not installed, e.g. "fontawesome5"
}

// basePackages are the packages a basic TeX Live installation
// (texlive-latex-base, -latex-recommended, -fonts-recommended) has.
var basePackages = []string{"amsmath", "amssymb", "geometry", "array", "tabularx", "multicol", "xcolor", "graphicx", "fancyhdr"}

func (t TeX) packages() []string {
	if len(t.Packages) == 0 {
		return basePackages
	}
	return t.Packages
}

func (t TeX) classes() []string {
	if len(t.Classes) == 0 {
		return []string{"article"}
	}
	return t.Classes
}

// SystemPrompt is the fixed first turn of every conversation of a Client
// whose compiler has tex.
func SystemPrompt(tex TeX) string {
	var b strings.Builder
	b.WriteString(`You write printable school worksheets in LaTeX.

Rules:
- Answer with LaTeX only: no explanations, no comments about your answer, no markdown, no code fences. Only when a message asks for a plain-text outline, request, description or tags, answer with exactly that plain text instead.
- A LaTeX answer is one complete document, from \documentclass to \end{document}, that compiles with pdflatex (not XeLaTeX or LuaLaTeX: no fontspec, no unicode-math).
`)
	fmt.Fprintf(&b, "- Use only these installed packages: %s. Use only these document classes: %s.", strings.Join(tex.packages(), ", "), strings.Join(tex.classes(), ", "))
	if len(tex.Languages) > 0 {
		fmt.Fprintf(&b, " babel languages installed: %s.", strings.Join(tex.Languages, ", "))
	}
	if len(tex.Absent) > 0 {
		fmt.Fprintf(&b, "\n- These packages are NOT installed; never use them: %s. For symbols and icons use amssymb, pifont (\\ding), wasysym or marvosym where installed, or draw them.", strings.Join(tex.Absent, ", "))
	}
	if len(tex.Packages) == 0 {
		b.WriteString(" Do not use enumitem or any other package.")
	}
	b.WriteString(`
- Do not include external files or images.
- The document is compiled up to three times, so cross-references (\label and \ref, \pageref, "Page \thepage\ of \pageref{LastPage}" with lastpage, exam's \numpoints and \gradetable) resolve and may be used.
- Never invent data: no facts, statistics, dates, quotations or names of real people that the user did not give. Use generic exercises or neutral placeholders instead.
- Leave enough space for the answers: answer lines, boxes or blank space after each exercise.
- Escape LaTeX special characters in text: \ { } $ & # ^ _ % ~.`)
	return b.String()
}

// missingRE matches the compile error latex writes for a file the TeX
// installation lacks: `LaTeX package "x" is not installed (x.sty)`.
var missingRE = regexp.MustCompile(`^(LaTeX package|document class|babel language|TikZ library|LaTeX file) ("(?:[^"\\]|\\.)*") is not installed \(([^()]*)\)$`)

// alternatives are, per package worksheets reach for, installed-elsewhere
// packages that do the same job; missingAdvice keeps the installed ones.
var alternatives = map[string][]string{
	"fontawesome5": {"pifont", "wasysym", "marvosym", "amssymb", "tikz"},
	"fontawesome":  {"pifont", "wasysym", "marvosym", "amssymb", "tikz"},
	"academicons":  {"pifont", "marvosym"},
	"bbding":       {"pifont", "amssymb"},
	"dingbat":      {"pifont", "amssymb"},
	"dsfont":       {"amssymb"},
	"bbm":          {"amssymb"},
	"esvect":       {"amsmath"},
	"newtxtext":    {"lmodern", "mathptmx", "helvet"},
	"newtxmath":    {"lmodern", "mathptmx"},
	"libertine":    {"lmodern", "charter"},
	"fourier":      {"lmodern", "charter"},
	"kpfonts":      {"lmodern", "charter"},
	"roboto":       {"helvet", "lmodern"},
	"lato":         {"helvet", "lmodern"},
	"opensans":     {"helvet", "lmodern"},
	"pstricks":     {"tikz", "pgfplots"},
	"tasks":        {"multicol", "enumitem"},
	"exsheets":     {"exam", "tcolorbox"},
	"xsim":         {"exam", "tcolorbox"},
	"skak":         {"tikz"},
	"chessboard":   {"tikz"},
	"fontspec":     {"lmodern", "fontenc", "inputenc"},
}

// missingAdvice returns the fix prompt's paragraph for a compile error that
// names a missing file, or "" for any other error.
func missingAdvice(message string, tex TeX) string {
	m := missingRE.FindStringSubmatch(strings.TrimSpace(message))
	if m == nil {
		return ""
	}
	kind, file := m[1], m[3]
	name, err := strconv.Unquote(m[2])
	if err != nil {
		return ""
	}
	var alt string
	switch kind {
	case "document class":
		alt = "Use one of the installed document classes instead: " + strings.Join(tex.classes(), ", ") + "."
	case "babel language":
		if len(tex.Languages) > 0 {
			alt = "Use one of the installed babel languages instead: " + strings.Join(tex.Languages, ", ") + "."
		}
	case "LaTeX package":
		var installed []string
		for _, p := range alternatives[name] {
			if slices.Contains(tex.packages(), p) || slices.Contains(tex.classes(), p) {
				installed = append(installed, p)
			}
		}
		if len(installed) > 0 {
			alt = "Installed alternatives: " + strings.Join(installed, ", ") + "."
		} else {
			alt = "Use only the installed packages: " + strings.Join(tex.packages(), ", ") + "."
		}
	default:
		alt = "Do not load any file other than the installed packages."
	}
	return fmt.Sprintf("The %s %q (%s) is not installed on this server and cannot be installed: rewrite the document without it and without its commands. %s", kind, name, file, alt)
}
