package ai

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newOffline(t *testing.T) *Client {
	t.Helper()
	c, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.Provider() != ProviderOffline {
		t.Fatalf("Provider() = %q, want offline", c.Provider())
	}
	return c
}

// offlineRun is the pipeline of one job on the offline provider.
type offlineRun struct {
	design, latex, fixed, refined, description string
	tags                                       []string
	conversation                               []Turn
}

func runOffline(t *testing.T, c *Client, prompt string) offlineRun {
	t.Helper()
	ctx := t.Context()
	var run offlineRun
	step := func(name string, r Reply, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Model != OfflineModel || r.Usage != (Usage{}) {
			t.Errorf("%s: model %q usage %+v, want offline and zero", name, r.Model, r.Usage)
		}
		wantTurns := 2
		if len(run.conversation) == 0 {
			wantTurns = 3
		}
		if len(r.Turns) != wantTurns || r.Turns[len(r.Turns)-1].Role != RoleAssistant {
			t.Fatalf("%s: Turns = %q, want %d turns ending with the assistant's", name, r.Turns, wantTurns)
		}
		run.conversation = append(run.conversation, r.Turns...)
		return r.Text
	}
	r, err := c.GenerateDesign(ctx, run.conversation, prompt)
	run.design = step("design", r, err)
	r, err = c.GenerateLatex(ctx, run.conversation, run.design)
	run.latex = step("latex", r, err)
	r, err = c.FixLatex(ctx, run.conversation, run.latex, LatexErrorInfo{Message: "Undefined control sequence.", Line: 3})
	run.fixed = step("fix", r, err)
	r, err = c.GenerateDescription(ctx, run.conversation, run.latex)
	run.description = step("description", r, err)
	run.tags, r, err = c.GenerateTags(ctx, run.conversation, run.latex)
	step("tags", r, err)
	r, err = c.RefinePrompt(ctx, run.conversation, "make it harder")
	run.refined = step("refine", r, err)
	return run
}

func TestOfflinePipeline(t *testing.T) {
	c := newOffline(t)
	prompt := "A fractions worksheet for grade 5"
	run := runOffline(t, c, prompt)

	if run.conversation[0] != (Turn{RoleSystem, SystemPrompt(TeX{})}) {
		t.Errorf("conversation starts with %q, want the system prompt", run.conversation[0])
	}
	if !strings.Contains(run.design, "Topic: "+prompt) || !strings.Contains(run.design, "fraction") {
		t.Errorf("design = %q, want an outline naming the prompt", run.design)
	}
	for _, want := range []string{`\documentclass`, `\end{document}`, prompt, offlineNote, `\frac{`} {
		if !strings.Contains(run.latex, want) {
			t.Errorf("latex lacks %q", want)
		}
	}
	if n := strings.Count(run.latex, `\item `); n != defaultExercises {
		t.Errorf("latex has %d exercises, want %d", n, defaultExercises)
	}
	if run.fixed != run.latex {
		t.Error("offline fix did not regenerate the same document")
	}
	if want := prompt + "\nRefinement: make it harder"; run.refined != want {
		t.Errorf("refined = %q, want %q", run.refined, want)
	}
	if !strings.Contains(run.description, prompt) {
		t.Errorf("description = %q, want it to name the prompt", run.description)
	}
	if len(run.tags) < 3 || len(run.tags) > 8 || !slices.Contains(run.tags, "fractions") {
		t.Errorf("tags = %q, want 3-8 tags including fractions", run.tags)
	}
	for _, tag := range run.tags {
		if tag != strings.ToLower(tag) {
			t.Errorf("tag %q is not lowercase", tag)
		}
	}

	again := runOffline(t, c, prompt)
	if again.latex != run.latex || again.description != run.description || !slices.Equal(again.tags, run.tags) {
		t.Error("offline answers differ between two runs of the same prompt")
	}
	other := runOffline(t, c, "Multiplication tables up to 12")
	if other.latex == run.latex || !strings.Contains(other.latex, `\times`) {
		t.Error("a different prompt gave the same document or not its exercise kind")
	}
}

func TestOfflineRefinedPromptIsDesignedAgain(t *testing.T) {
	c := newOffline(t)
	run := runOffline(t, c, "Subtraction drills")
	r, err := c.GenerateDesign(t.Context(), run.conversation, run.refined)
	if err != nil {
		t.Fatalf("GenerateDesign: %v", err)
	}
	conv := append(run.conversation, r.Turns...)
	fix, err := c.FixLatex(t.Context(), conv, "broken", LatexErrorInfo{})
	if err != nil {
		t.Fatalf("FixLatex: %v", err)
	}
	if !strings.Contains(fix.Text, "Subtraction drills Refinement: make it harder") {
		t.Errorf("fix after refinement does not use the refined request:\n%s", fix.Text)
	}
	again, err := c.RefinePrompt(t.Context(), conv, "add a title")
	if err != nil {
		t.Fatalf("RefinePrompt: %v", err)
	}
	if want := "Subtraction drills\nRefinement: make it harder\nRefinement: add a title"; again.Text != want {
		t.Errorf("second refinement = %q, want %q", again.Text, want)
	}
}

func TestOfflineWithoutHistory(t *testing.T) {
	c := newOffline(t)
	fix, err := c.FixLatex(t.Context(), nil, "broken", LatexErrorInfo{})
	if err != nil {
		t.Fatalf("FixLatex: %v", err)
	}
	if !strings.Contains(fix.Text, genericTopic) {
		t.Errorf("fix without history lacks the generic title %q", genericTopic)
	}
	latex, err := c.GenerateLatex(t.Context(), nil, "Decimals review\nSection 1")
	if err != nil {
		t.Fatalf("GenerateLatex: %v", err)
	}
	if !strings.Contains(latex.Text, "Decimals review") {
		t.Error("latex from a foreign outline does not use its first line as title")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.GenerateDesign(ctx, nil, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled offline call error = %v, want context.Canceled", err)
	}
}

func TestOfflineLatexIsSafe(t *testing.T) {
	tests := []struct {
		name   string
		prompt string
		want   string // escaped text the title must contain
	}{
		{"hostile", `\input{/etc/passwd} 50% & $5 _ ^ ~ # { }`, `\textbackslash{}input\{/etc/passwd\}`},
		{"percent ampersand dollar", "A fractions worksheet for grade 5 with 50% & $5 examples", `50\% \& \ensuremath{\$}5`},
		{"write18 and catcodes", `\immediate\write18{rm -rf /} \catcode` + "`" + `\%=11 \def\x{\x}\x`, `\textbackslash{}immediate`},
		{"unicode", "Übung für Schüler – “Brüche” ½ € 😀 中文 ð «x»", "Übung für Schüler – “Brüche” ? ? ? ?? ? ?x?"},
		{"multi-line", "Line one\n\n\\end{document}\nLine three", `Line one \textbackslash{}end\{document\} Line three`},
		{"very long", strings.Repeat("long prompt ", 2000), "long prompt long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newOffline(t)
			design, err := c.GenerateDesign(t.Context(), nil, tt.prompt)
			if err != nil {
				t.Fatalf("GenerateDesign: %v", err)
			}
			r, err := c.GenerateLatex(t.Context(), design.Turns, design.Text)
			if err != nil {
				t.Fatalf("GenerateLatex: %v", err)
			}
			for _, bad := range []string{`\input`, `\immediate`, `\write18`, `\catcode`, `\def`} {
				if strings.Contains(r.Text, bad) {
					t.Errorf("document contains unescaped %s", bad)
				}
			}
			if strings.Count(r.Text, `\end{document}`) != 1 {
				t.Error(`document has more than one \end{document}`)
			}
			if !strings.Contains(r.Text, tt.want) {
				t.Errorf("document lacks %q:\n%s", tt.want, r.Text)
			}
			compile(t, r.Text)
		})
	}
}

// compile runs pdflatex on src as the compile stage does and fails the test
// unless it exits 0 with a PDF. It skips when pdflatex is not installed.
func compile(t *testing.T, src string) {
	t.Helper()
	if _, err := exec.LookPath("pdflatex"); err != nil {
		t.Skip("pdflatex not on PATH")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tex"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pdflatex", "-no-shell-escape", "-interaction=nonstopmode",
		"-halt-on-error", "main.tex")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "openin_any=p", "openout_any=p", "shell_escape=f",
		"HOME="+dir, "TEXMFVAR="+filepath.Join(dir, "texmf-var"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdflatex: %v\n%s\n--- source ---\n%s", err, out, src)
	}
	pdf, err := os.ReadFile(filepath.Join(dir, "main.pdf"))
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("no PDF after pdflatex (%v)\n%s", err, out)
	}
	if bytes.Contains(out, []byte("mktexpk")) {
		t.Errorf("pdflatex had to generate bitmap fonts:\n%s", out)
	}
}
