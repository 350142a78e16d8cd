package latex

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kinds of a missing file, as they read in a LatexError's message.
const (
	MissingPackage  = "LaTeX package"
	MissingClass    = "document class"
	MissingLanguage = "babel language"
	MissingTikzLib  = "TikZ library"
	MissingInput    = "LaTeX file"
)

// Missing is a file a document asked for that the TeX installation lacks.
type Missing struct {
	Kind string // MissingPackage, MissingClass, MissingLanguage, MissingTikzLib or MissingInput
	Name string // what the document names: "enumitem", "exam", "klingon", "calendar"
	File string // the file looked for: "enumitem.sty", "exam.cls", "klingon.ldf"
}

// String is the message a LatexError carries for m, e.g.
// `LaTeX package "fontawesome5" is not installed (fontawesome5.sty)`.
func (m Missing) String() string {
	return fmt.Sprintf("%s %q is not installed (%s)", m.Kind, m.Name, m.File)
}

var (
	// fileNotFoundRE matches LaTeX's "File `x.sty' not found." (from
	// \usepackage, \documentclass, \input ...).
	fileNotFoundRE = regexp.MustCompile("^LaTeX Error: File `([^'`]+)' not found\\.")
	// babelUnknownRE matches babel's unknown language, with its continuation
	// lines joined.
	babelUnknownRE = regexp.MustCompile(`^Package babel Error: Unknown option '([^']+)'\..*language definition file (\S+\.ldf) was not found`)
	// tikzLibraryRE matches TikZ's unknown library.
	tikzLibraryRE = regexp.MustCompile(`^Package tikz Error: I did not find the tikz library '([^']+)'`)
	// missingMessageRE matches a message written by Missing.String.
	missingMessageRE = regexp.MustCompile(`^(LaTeX package|document class|babel language|TikZ library|LaTeX file) ("(?:[^"\\]|\\.)*") is not installed \(([^()]*)\)$`)
)

// missingFile recognises pdflatex's message for a missing package, class,
// babel language, TikZ library or \input file. Other missing files (an image,
// a font) are not named: their message stays pdflatex's.
func missingFile(message string) (Missing, bool) {
	if m := fileNotFoundRE.FindStringSubmatch(message); m != nil {
		file := m[1]
		kinds := map[string]string{".sty": MissingPackage, ".cls": MissingClass, ".ldf": MissingLanguage, ".tex": MissingInput}
		for ext, kind := range kinds {
			if name, ok := strings.CutSuffix(file, ext); ok && name != "" {
				return Missing{Kind: kind, Name: name, File: file}, true
			}
		}
		return Missing{}, false
	}
	if m := babelUnknownRE.FindStringSubmatch(message); m != nil {
		return Missing{Kind: MissingLanguage, Name: m[1], File: m[2]}, true
	}
	if m := tikzLibraryRE.FindStringSubmatch(message); m != nil {
		return Missing{Kind: MissingTikzLib, Name: m[1], File: "tikzlibrary" + m[1] + ".code.tex"}, true
	}
	return Missing{}, false
}

// ParseMissing returns the missing file a LatexError's message names, as
// written by Missing.String; ok is false for every other message.
func ParseMissing(message string) (Missing, bool) {
	m := missingMessageRE.FindStringSubmatch(strings.TrimSpace(message))
	if m == nil {
		return Missing{}, false
	}
	name, err := strconv.Unquote(m[2])
	if err != nil {
		return Missing{}, false
	}
	return Missing{Kind: m[1], Name: name, File: m[3]}, true
}
