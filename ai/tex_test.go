package ai

import (
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

var installedTeX = TeX{
	Packages:  []string{"amsmath", "enumitem", "tikz", "pifont", "marvosym"},
	Classes:   []string{"article", "exam"},
	Languages: []string{"english", "french"},
	Absent:    []string{"fontawesome5", "bbding"},
}

// The model is told what the compiler has: the system prompt of the first
// request names the installed packages, classes and languages and the absent
// packages, not the basic nine.
func TestSystemPromptNamesInstalledTeX(t *testing.T) {
	cfg := stepConfig
	cfg.TeX = installedTeX
	c, srv := newFakeClient(t, cfg, fakellm.Script(fakellm.Reply{Content: "outline"}))
	reply, err := c.GenerateDesign(t.Context(), nil, "p")
	if err != nil {
		t.Fatalf("GenerateDesign: %v", err)
	}
	system := srv.Calls()[0].Messages[0].Content
	if reply.Turns[0].Content != system || c.SystemPrompt() != system {
		t.Fatalf("system turn differs from the one sent")
	}
	for _, want := range []string{
		"installed packages: amsmath, enumitem, tikz, pifont, marvosym.",
		"document classes: article, exam.",
		"babel languages installed: english, french.",
		"NOT installed; never use them: fontawesome5, bbding.",
		"no fontspec",
		"compiled up to three times",
	} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, system)
		}
	}
	if strings.Contains(system, "Do not use enumitem") {
		t.Errorf("system prompt forbids an installed package:\n%s", system)
	}
}

func TestSystemPromptWithoutInventoryIsTheBasicSet(t *testing.T) {
	system := SystemPrompt(TeX{})
	for _, want := range []string{"installed packages: amsmath, amssymb, geometry, array, tabularx, multicol, xcolor, graphicx, fancyhdr.", "document classes: article.", "Do not use enumitem"} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, system)
		}
	}
	if strings.Contains(system, "babel") || strings.Contains(system, "NOT installed") {
		t.Errorf("system prompt names an inventory it does not have:\n%s", system)
	}
}

// A compile error naming a missing file makes the fix prompt say so and offer
// what is installed instead; other errors get no such paragraph.
func TestFixMessageAdvisesOnMissingFiles(t *testing.T) {
	tests := []struct {
		name    string
		message string
		want    []string
		notWant []string
	}{
		{
			name:    "missing package with installed alternatives",
			message: `LaTeX package "fontawesome5" is not installed (fontawesome5.sty)`,
			want:    []string{`The LaTeX package "fontawesome5" (fontawesome5.sty) is not installed on this server`, "without it", "Installed alternatives: pifont, marvosym, tikz."},
			notWant: []string{"wasysym"},
		},
		{
			name:    "missing package without a known alternative",
			message: `LaTeX package "weird" is not installed (weird.sty)`,
			want:    []string{`"weird"`, "Use only the installed packages: amsmath, enumitem, tikz, pifont, marvosym."},
		},
		{
			name:    "missing class",
			message: `document class "examx" is not installed (examx.cls)`,
			want:    []string{`The document class "examx" (examx.cls)`, "installed document classes instead: article, exam."},
		},
		{
			name:    "missing babel language",
			message: `babel language "klingon" is not installed (klingon.ldf)`,
			want:    []string{`"klingon" (klingon.ldf)`, "installed babel languages instead: english, french."},
		},
		{
			name:    "other error",
			message: "Undefined control sequence.",
			notWant: []string{"not installed", "alternatives"},
		},
		{
			name:    "max retries prefix is not a fix message",
			message: `LaTeX package "x is not installed (x.sty)`,
			notWant: []string{"alternatives"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fixMessage(doc, LatexErrorInfo{Message: tt.message, Line: 2}, installedTeX)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("fix message lacks %q:\n%s", w, msg)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("fix message contains %q:\n%s", w, msg)
				}
			}
		})
	}
}
