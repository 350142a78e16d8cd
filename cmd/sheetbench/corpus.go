package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/latex"
)

// corpusMarker marks the true line of the mistake in a broken corpus document
// (latex/testdata/corpus/broken; the latex package's TestCorpus reads the same).
const corpusMarker = "% ERROR-LINE"

// corpusResult is the real compiler on the worksheet corpus: how many good
// documents compile on the first try, how many broken ones report the line of
// their mistake.
type corpusResult struct {
	Good, GoodOK      int
	Broken, LineOK    int
	Median            time.Duration // median compile time of the good documents
	Failed, WrongLine []string      // names, for the notes
}

// runCorpus compiles dir/good/*.tex and dir/broken/*.tex, at most GOMAXPROCS
// at once; a quick run takes the first few of each.
func runCorpus(ctx context.Context, dir string, quick bool) (*corpusResult, error) {
	comp, err := latex.New(latex.Config{})
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	r := &corpusResult{}
	var times []time.Duration
	for _, kind := range []string{"good", "broken"} {
		files, err := filepath.Glob(filepath.Join(dir, kind, "*.tex"))
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("no corpus in %s: %v", filepath.Join(dir, kind), err)
		}
		if quick {
			files = files[:min(len(files), 3)]
		}
		outs := compileAll(ctx, comp, files)
		for i, o := range outs {
			if o.err != nil && !errors.As(o.err, new(*latex.LatexError)) {
				return nil, fmt.Errorf("%s: %w", files[i], o.err)
			}
			name := filepath.Base(files[i])
			if kind == "good" {
				r.Good++
				times = append(times, o.took)
				if o.err == nil {
					r.GoodOK++
				} else {
					r.Failed = append(r.Failed, name)
				}
				continue
			}
			r.Broken++
			var le *latex.LatexError
			if errors.As(o.err, &le) && le.Line == o.wantLine && o.wantLine > 0 {
				r.LineOK++
			} else {
				r.WrongLine = append(r.WrongLine, name)
			}
		}
	}
	slices.Sort(times)
	r.Median = times[len(times)/2]
	return r, nil
}

type corpusOutcome struct {
	wantLine int
	took     time.Duration
	err      error
}

func compileAll(ctx context.Context, comp *latex.Compiler, files []string) []corpusOutcome {
	outs := make([]corpusOutcome, len(files))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			src, err := os.ReadFile(f)
			if err != nil {
				outs[i].err = err
				return
			}
			for n, l := range strings.Split(string(src), "\n") {
				if strings.Contains(l, corpusMarker) {
					outs[i].wantLine = n + 1
				}
			}
			start := time.Now()
			_, outs[i].err = comp.Compile(ctx, string(src))
			outs[i].took = time.Since(start)
		})
	}
	wg.Wait()
	return outs
}

func (r *Results) corpusRows(t *table) {
	c := r.Corpus
	if c == nil {
		return
	}
	const s = "corpus"
	t.add(s, fmt.Sprintf("LLM-style worksheets that compile on the first try (%d documents)", c.Good),
		fmt.Sprintf("%d (%s)", c.GoodOK, percent(float64(c.GoodOK)/float64(c.Good))))
	t.add(s, fmt.Sprintf("broken worksheets whose error names the line of the mistake (%d documents)", c.Broken),
		fmt.Sprintf("%d (%s)", c.LineOK, percent(float64(c.LineOK)/float64(c.Broken))))
	t.add(s, "median compile time of a good worksheet (compiled GOMAXPROCS at a time)", ms(c.Median))
}

// notes name the documents that missed.
func (c *corpusResult) notes() []string {
	var n []string
	if len(c.Failed) > 0 {
		n = append(n, "corpus: did not compile: "+strings.Join(c.Failed, ", "))
	}
	if len(c.WrongLine) > 0 {
		n = append(n, "corpus: wrong line reported: "+strings.Join(c.WrongLine, ", "))
	}
	return n
}
