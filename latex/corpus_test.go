package latex

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// corpusMarker marks the true line of the mistake in a broken corpus document.
const corpusMarker = "% ERROR-LINE"

// corpusResult is the outcome of compiling one corpus document.
type corpusResult struct {
	name     string
	wantLine int // 0 for a good document
	pdf      []byte
	err      error
}

// compileCorpus compiles every .tex file in dir, at most GOMAXPROCS at a time.
func compileCorpus(ctx context.Context, t *testing.T, c *Compiler, dir string) []corpusResult {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	results := make([]corpusResult, len(files))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		results[i] = corpusResult{name: filepath.Base(f), wantLine: markedLine(string(src))}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i].pdf, results[i].err = c.Compile(ctx, string(src))
		})
	}
	wg.Wait()
	return results
}

// markedLine returns the 1-based line holding corpusMarker, 0 if none.
func markedLine(src string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, corpusMarker) {
			return i + 1
		}
	}
	return 0
}

// TestCorpus compiles realistic LLM-written worksheets (testdata/corpus/good)
// with the packages they use, and broken variants of them
// (testdata/corpus/broken), each with its mistake's line marked: at least 95%
// of the good ones compile, every broken one fails, and at least 90% of those
// report the marked line.
func TestCorpus(t *testing.T) {
	c, _ := newTestCompiler(t, Config{})
	good := compileCorpus(t.Context(), t, c, filepath.Join("testdata", "corpus", "good"))
	ok := 0
	for _, r := range good {
		if r.wantLine != 0 {
			t.Errorf("%s: a good document has an %s marker", r.name, corpusMarker)
		}
		if r.err == nil && strings.HasPrefix(string(r.pdf), "%PDF") {
			ok++
			continue
		}
		t.Logf("good %s does not compile: %v", r.name, r.err)
	}
	t.Logf("good: %d/%d compile on the first try", ok, len(good))
	if len(good) < 40 || ok*100 < 95*len(good) {
		t.Errorf("good: %d/%d compile, want at least 95%% of at least 40", ok, len(good))
	}

	broken := compileCorpus(t.Context(), t, c, filepath.Join("testdata", "corpus", "broken"))
	right := 0
	for _, r := range broken {
		var le *LatexError
		switch {
		case r.wantLine == 0:
			t.Errorf("%s: no %s marker", r.name, corpusMarker)
		case !errors.As(r.err, &le):
			t.Errorf("broken %s: err = %v, want a *LatexError", r.name, r.err)
		case le.Line == r.wantLine:
			right++
		default:
			t.Logf("broken %s: line %d, want %d (%s)", r.name, le.Line, r.wantLine, le.Message)
		}
	}
	t.Logf("broken: %d/%d report the true line", right, len(broken))
	if len(broken) < 15 || right*100 < 90*len(broken) {
		t.Errorf("broken: %d/%d report the true line, want at least 90%% of at least 15", right, len(broken))
	}
}

// With the T1 font encoding LLMs like, the fonts are cm-super's outlines: no
// METAFONT run per compile and no Type 3 bitmap fonts in the PDF.
func TestT1FontsAreOutlines(t *testing.T) {
	c, _ := newTestCompiler(t, Config{})
	pdf, err := c.Compile(t.Context(), "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\begin{document}\n\\'El\\`eve \\`a l'\\'ecole, \\textbf{gras}, \\texttt{mono}.\n\\end{document}\n")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	content := pdfContent(pdf)
	requireNotContains(t, content, "/Type3", "pdf")
	requireContains(t, content, "SFRM1000", "pdf fonts")
}
