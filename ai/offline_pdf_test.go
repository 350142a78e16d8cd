package ai

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/latex"
)

var (
	compilerOnce sync.Once
	compiler     *latex.Compiler
	compilerErr  error
)

// pdfText compiles src with the real compiler (pdflatex in its jail, as the
// compile stage does) and returns the PDF's text as pdftotext lays it out.
func pdfText(t *testing.T, src string) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext not on PATH (Debian package poppler-utils)")
	}
	compilerOnce.Do(func() { compiler, compilerErr = latex.New(latex.Config{}) })
	if compilerErr != nil {
		t.Skipf("no compiler: %v", compilerErr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pdf, err := compiler.Compile(ctx, src)
	if err != nil {
		t.Fatalf("compile: %v\n--- source ---\n%s", err, src)
	}
	path := filepath.Join(t.TempDir(), "sheet.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// offlineSheet runs the design and latex steps for prompt, then for each
// refinement the refine, design and latex steps as the pipeline does, and
// returns the last document.
func offlineSheet(t *testing.T, prompt string, refinements ...string) string {
	t.Helper()
	c := newOffline(t)
	ctx := t.Context()
	var conv []Turn
	next := func(r Reply, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		conv = append(conv, r.Turns...)
		return r.Text
	}
	design := next(c.GenerateDesign(ctx, conv, prompt))
	doc := next(c.GenerateLatex(ctx, conv, design))
	for _, instr := range refinements {
		refined := next(c.RefinePrompt(ctx, conv, instr))
		design = next(c.GenerateDesign(ctx, conv, refined))
		doc = next(c.GenerateLatex(ctx, conv, design))
	}
	return doc
}

var (
	itemLine = regexp.MustCompile(`^\s*(\d+)\.\s+(\S.*?)\s*$`)
	number   = regexp.MustCompile(`\d+(?:\.\d+)?`)
	decimalN = regexp.MustCompile(`\d\.\d`)
)

// items returns the text of the numbered exercises in a PDF's text, checking
// that they are numbered 1, 2, 3...
func items(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(text, "\n") {
		m := itemLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(len(out)+1) {
			continue
		}
		out = append(out, m[2])
	}
	return out
}

// largest is the largest number in the exercises.
func largest(exercises []string) float64 {
	top := 0.0
	for _, ex := range exercises {
		for _, n := range number.FindAllString(ex, -1) {
			v, _ := strconv.ParseFloat(n, 64)
			top = max(top, v)
		}
	}
	return top
}

// TestOfflineSheetFollowsThePrompt reads the compiled PDF of each request's
// offline worksheet: the number of exercises asked for (bounded to 1..100), the
// topic's exercises, the listed words, no exercise twice, and a title and a
// notice that say it is an offline placeholder.
func TestOfflineSheetFollowsThePrompt(t *testing.T) {
	tests := []struct {
		name    string
		prompt  string
		count   int
		title   string
		each    func(ex string) bool // every exercise passes
		inText  []string
		without []string
	}{
		{"multiplication count", "A multiplication worksheet, 20 exercises, grade 3", 20, "Multiplication",
			func(ex string) bool { return strings.Contains(ex, "×") }, []string{"Grade 3"}, nil},
		{"spelling words", "Spelling words cat, dog, fish", 3, "Spelling",
			func(ex string) bool { return strings.Contains(ex, "Copy the word") },
			[]string{"cat", "dog", "fish"}, []string{"×", " + "}},
		{"spelling words with formats", "A spelling worksheet with the words house, garden and river for grade 2, 9 exercises", 9, "Spelling",
			nil, []string{"house", "garden", "river", "Unscramble", "missing letters"}, []string{"worksheet with", "grade 2,"}},
		{"vocabulary", "Vocabulary: harbour, lighthouse, tide, anchor", 4, "Vocabulary",
			func(ex string) bool { return strings.Contains(ex, "means") },
			[]string{"harbour", "lighthouse", "tide", "anchor"}, nil},
		{"decimals", "Decimals practice for grade 5", 10, "Decimals",
			decimalN.MatchString, nil, nil},
		{"percentages", "Percentages, 15 questions", 15, "Percentages",
			func(ex string) bool { return strings.Contains(ex, "% of") }, nil, nil},
		{"division", "Division for grade 4, 12 problems", 12, "Division",
			func(ex string) bool { return strings.Contains(ex, "÷") }, nil, nil},
		{"subtraction", "Subtraction, 8 exercises", 8, "Subtraction",
			func(ex string) bool { return strings.Contains(ex, "−") }, nil, nil},
		{"addition", "Addition up to 100", 10, "Addition",
			func(ex string) bool { return strings.Contains(ex, "+") }, nil, nil},
		{"fractions", "Fractions for grade 5, 6 exercises", 6, "Fractions", nil, nil, nil},
		{"default", "Something for my class", 10, "Mixed arithmetic", nil, nil, nil},
		{"at most 100", "Addition, 500 exercises", 100, "Addition", nil, nil, nil},
		{"at least 1", "Addition, 0 exercises", 1, "Addition", nil, nil, nil},
		{"100 distinct from a small range", "Multiplication, 100 exercises, grade 1", 100, "Multiplication", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := pdfText(t, offlineSheet(t, tc.prompt))
			exercises := items(t, text)
			if len(exercises) != tc.count {
				t.Errorf("%d exercises, want %d:\n%s", len(exercises), tc.count, text)
			}
			seen := map[string]bool{}
			for _, ex := range exercises {
				if seen[ex] {
					t.Errorf("exercise %q twice", ex)
				}
				seen[ex] = true
				if tc.each != nil && !tc.each(ex) {
					t.Errorf("exercise %q is not a %s exercise", ex, tc.title)
				}
			}
			title := tc.title + " — offline sample worksheet (no LLM configured)"
			flat := strings.Join(strings.Fields(text), " ")
			for _, want := range append([]string{title, "not by a language model"}, tc.inText...) {
				if !strings.Contains(flat, want) {
					t.Errorf("PDF text lacks %q:\n%s", want, text)
				}
			}
			for _, bad := range tc.without {
				if strings.Contains(strings.Join(exercises, "\n"), bad) {
					t.Errorf("exercises contain %q:\n%s", bad, text)
				}
			}
		})
	}
}

// TestOfflineSheetFollowsGradeAndRefinements: a higher grade and a "harder"
// refinement give larger numbers, "easier" smaller ones, "more" and "fewer"
// change the number of exercises by 5, and the same requests give the same PDF.
func TestOfflineSheetFollowsGradeAndRefinements(t *testing.T) {
	const base = "Subtraction drills"
	sheet := func(prompt string, refinements ...string) []string {
		t.Helper()
		return items(t, pdfText(t, offlineSheet(t, prompt, refinements...)))
	}
	plain := sheet(base)
	low, high := sheet("Addition for grade 1"), sheet("Addition for grade 8")
	if largest(high) <= largest(low) {
		t.Errorf("grade 8's largest number %v is not above grade 1's %v", largest(high), largest(low))
	}
	tests := []struct {
		instruction string
		count       int
		numbers     int // sign of the change of the largest number
	}{
		{"make it harder", 10, 1},
		{"make it easier", 10, -1},
		{"more exercises please", 15, 0},
		{"fewer exercises", 5, 0},
		{"use 30 exercises", 30, 0},
	}
	for _, tc := range tests {
		t.Run(tc.instruction, func(t *testing.T) {
			refined := sheet(base, tc.instruction)
			if len(refined) != tc.count {
				t.Errorf("%d exercises after %q, want %d", len(refined), tc.instruction, tc.count)
			}
			got, was := largest(refined), largest(plain)
			switch {
			case tc.numbers > 0 && got <= was, tc.numbers < 0 && got >= was:
				t.Errorf("largest number %v after %q, was %v", got, tc.instruction, was)
			}
		})
	}
	twice := sheet(base, "make it harder", "make it harder")
	once := sheet(base, "make it harder")
	if largest(twice) <= largest(once) {
		t.Errorf("harder twice: largest %v, not above once harder's %v", largest(twice), largest(once))
	}
	first, again := offlineSheet(t, base, "make it harder"), offlineSheet(t, base, "make it harder")
	if first != again || pdfText(t, first) != pdfText(t, again) {
		t.Error("the same request and refinement gave two different worksheets")
	}
}
