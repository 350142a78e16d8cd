package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/latex"
)

// formatWorksheets are the corpus worksheets the format scenario compiles
// besides the typical one: the heavy preambles.
var formatWorksheets = []string{"statistics_pgfplots_bar.tex", "math_geometry_angles.tex"}

// formatRow is one worksheet compiled with the format cache off and on.
type formatRow struct {
	Name     string
	Off, On  float64 // compiles/s with compile concurrency = cores
	Same     string  // "yes", or why the PDFs differ / were not compared
	Speedup  float64 // On / Off
	Heavy    bool    // a tikz/pgfplots worksheet: the target applies
	Compiles int     // compiles measured in each mode
}

// formatResult is the compile throughput with and without dumped preamble
// formats, measured side by side.
type formatResult struct {
	Cores int
	Rows  []formatRow
}

// runFormat compiles each worksheet with two Compilers, formats off and on,
// in alternating rounds of cores concurrent compiles (so both see the same
// machine), after the formats were built; throughput = compiles / the rounds'
// time. The PDFs of both are compared by pdftotext's text and page count.
func runFormat(ctx context.Context, corpus string, sz sizes) (*formatResult, error) {
	tmp, err := os.MkdirTemp("", "sheetbench-format-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // the formats too
	off, err := formatCompiler(tmp, "off", -1)
	if err != nil {
		return nil, err
	}
	on, err := formatCompiler(tmp, "on", 0)
	if err != nil {
		return nil, err
	}
	_, typical, err := offlineWorksheet(ctx)
	if err != nil {
		return nil, err
	}
	docs := []struct{ name, src string }{{"typical (offline provider)", typical}}
	for _, name := range formatWorksheets {
		b, err := os.ReadFile(filepath.Join(corpus, "good", name))
		if err != nil {
			return nil, fmt.Errorf("format worksheet: %w", err)
		}
		docs = append(docs, struct{ name, src string }{name, string(b)})
	}
	cores := runtime.NumCPU()
	r := &formatResult{Cores: cores}
	for _, d := range docs {
		row := formatRow{Name: d.name, Heavy: d.name != docs[0].name}
		var pdfs [2][]byte
		for i, c := range []*latex.Compiler{off, on} {
			for range 3 { // the second compile of a preamble builds its format
				if pdfs[i], err = c.Compile(ctx, d.src); err != nil {
					return nil, fmt.Errorf("%s: %w", d.name, err)
				}
			}
		}
		row.Same = samePages(pdfs[0], pdfs[1])
		var took [2]time.Duration
		for range max(sz.compileRuns, 2) {
			for i, c := range []*latex.Compiler{off, on} {
				d, err := compileRound(ctx, c, d.src, cores)
				if err != nil {
					return nil, err
				}
				took[i] += d
			}
		}
		row.Compiles = max(sz.compileRuns, 2) * cores
		row.Off = float64(row.Compiles) / took[0].Seconds()
		row.On = float64(row.Compiles) / took[1].Seconds()
		row.Speedup = row.On / row.Off
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

func formatCompiler(tmp, name string, size int64) (*latex.Compiler, error) {
	dir := filepath.Join(tmp, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	c, err := latex.New(latex.Config{TempDir: dir, FormatCacheSize: size})
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	return c, nil
}

// compileRound compiles src n times at once and returns the time they took.
func compileRound(ctx context.Context, c *latex.Compiler, src string, n int) (time.Duration, error) {
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = c.Compile(ctx, src) })
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// samePages compares two PDFs' text and page count with poppler's pdftotext
// and pdfinfo.
func samePages(a, b []byte) string {
	var got [2]string
	for i, pdf := range [][]byte{a, b} {
		for _, tool := range [][]string{{"pdftotext", "-layout", "-", "-"}, {"pdfinfo", "-"}} {
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Stdin = bytes.NewReader(pdf)
			out, err := cmd.Output()
			if err != nil {
				return fmt.Sprintf("not compared (%s: %v)", tool[0], err)
			}
			if tool[0] == "pdfinfo" {
				out = pagesLine(out)
			}
			got[i] += string(out)
		}
	}
	if got[0] != got[1] {
		return "NO: text or page count differ"
	}
	return "yes"
}

func pagesLine(info []byte) []byte {
	for _, l := range bytes.Split(info, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("Pages:")) {
			return l
		}
	}
	return nil
}

func (r *Results) formatRows(t *table) {
	f := r.Format
	if f == nil {
		return
	}
	const s = "format"
	for _, row := range f.Rows {
		t.add(s, fmt.Sprintf("%s: compiles/s plain → with its format (%d compiles each, %d at a time; same text and pages: %s)",
			row.Name, row.Compiles, f.Cores, row.Same),
			fmt.Sprintf("%.2f → %.2f (%.2f×)", row.Off, row.On, row.Speedup))
	}
}

// goalFormatSpeedup is issue 15's target for the heavy worksheets.
const goalFormatSpeedup = 1.5

// formatTarget is the slowest heavy worksheet's speed-up, and whether every
// PDF matched.
func (f *formatResult) target() (string, bool) {
	worst, name, same := 0.0, "", true
	for _, row := range f.Rows {
		same = same && row.Same == "yes"
		if row.Heavy && (name == "" || row.Speedup < worst) {
			worst, name = row.Speedup, row.Name
		}
	}
	return fmt.Sprintf("%.2f× (%s), PDFs same: %t", worst, name, same), worst >= goalFormatSpeedup && same
}
