package ai

import (
	"strings"
	"testing"
	"unicode/utf8"
)

const refLatex = "\\documentclass{article}\n\\begin{document}\nWS-4711\n\\end{document}"

// TestOfflineIgnoresReferences: the offline provider answers from the request
// and outline alone, so references change nothing and the document compiles.
func TestOfflineIgnoresReferences(t *testing.T) {
	c := newOffline(t)
	refs := []Reference{{JobID: "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", Latex: refLatex}}
	plain, err := c.GenerateDesign(t.Context(), nil, "answer key for grade 5 fractions")
	if err != nil {
		t.Fatal(err)
	}
	design, err := c.GenerateDesign(t.Context(), nil, "answer key for grade 5 fractions", refs...)
	if err != nil {
		t.Fatal(err)
	}
	if design.Text != plain.Text || !strings.Contains(design.Turns[1].Content, refLatex) {
		t.Fatalf("offline design with references: %q (user turn carries them: %v)", design.Text, strings.Contains(design.Turns[1].Content, refLatex))
	}
	doc, err := c.GenerateLatex(t.Context(), design.Turns, design.Text, refs...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc.Text, "WS-4711") || !strings.Contains(doc.Text, "answer key for grade 5 fractions") {
		t.Fatalf("offline document from the references' turns:\n%s", doc.Text)
	}
	compile(t, doc.Text)
}

func TestReferencesMessage(t *testing.T) {
	big := strings.Repeat("\\item ½ line of a long document\n", 4000)
	tests := []struct {
		name     string
		refs     []Reference
		contains []string
		maxLen   int
	}{
		{"none", nil, nil, 0},
		{"one", []Reference{{JobID: "a", Latex: refLatex}},
			[]string{"builds on these finished documents", "----- BEGIN DOCUMENT a -----\n" + refLatex + "\n----- END DOCUMENT a -----"}, 1024},
		{"bounded", []Reference{{JobID: "a", Latex: big}, {JobID: "b", Latex: big}},
			[]string{"BEGIN DOCUMENT a", "BEGIN DOCUMENT b", truncatedNote}, MaxReferenceBytes + 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := referencesMessage(tt.refs)
			if len(got) > tt.maxLen || !utf8.ValidString(got) {
				t.Fatalf("message is %d bytes (max %d), valid UTF-8 %v", len(got), tt.maxLen, utf8.ValidString(got))
			}
			for _, want := range tt.contains {
				if !strings.Contains(got, want) {
					t.Fatalf("message lacks %q:\n%.500s", want, got)
				}
			}
		})
	}
}
