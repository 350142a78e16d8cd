package latex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// formatFiles lists the formats in c's cache.
func formatFiles(t *testing.T, c *Compiler) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c.formats.dir, "*.fmt"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// outcomeText is what a reader of a compile's result sees: the PDF's text and
// page count, or the error's message and line.
func outcomeText(t *testing.T, pdf []byte, err error) string {
	t.Helper()
	var le *LatexError
	if errors.As(err, &le) {
		return fmt.Sprintf("error line=%d message=%q", le.Line, le.Message)
	}
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	text, pages := pdfText(t, pdf)
	return fmt.Sprintf("pages=%d text:\n%s", pages, text)
}

// TestFormatGivesTheSameDocuments compiles every corpus worksheet, good and
// broken, without formats and, with them, twice (the second compile builds
// the preamble's format and uses it): the PDFs' text and page counts, or the
// errors and their lines, are the same; every good worksheet's preamble got
// its format (a broken preamble gets none: its build fails).
func TestFormatGivesTheSameDocuments(t *testing.T) {
	plain, _ := newTestCompiler(t, Config{FormatCacheSize: -1})
	requireEqual(t, plain.formats == nil, true, "formats off")
	withFmt, tmp := newTestCompiler(t, Config{})
	var files []string
	for _, kind := range []string{"good", "broken"} {
		f, _ := filepath.Glob(filepath.Join("testdata", "corpus", kind, "*.tex"))
		files = append(files, f...)
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	eligible := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := splitPreamble(string(src)); ok {
			eligible++
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pdf, err := plain.Compile(t.Context(), string(src))
			want := outcomeText(t, pdf, err)
			for range 2 {
				pdf, err := withFmt.Compile(t.Context(), string(src))
				got := outcomeText(t, pdf, err)
				if got != want {
					mu.Lock()
					t.Errorf("%s: with formats:\n%s\nwithout:\n%s", filepath.Base(f), got, want)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d documents, %d with a preamble a format can hold, %d formats built", len(files), eligible, withFmt.formats.builds.Load())
	for _, f := range files { // every good worksheet's preamble got its format
		src, _ := os.ReadFile(f)
		pre, ok := splitPreamble(string(src))
		_, err := os.Stat(withFmt.formats.path(withFmt.formats.key(pre)))
		if strings.Contains(f, "good") && (!ok || err != nil) {
			t.Errorf("%s: no format (splits %t: %v)", f, ok, err)
		}
	}
	requireEmptyDir(t, tmp)
}

// TestFormatIsUsed: the second compile of a preamble builds its format, later
// ones use it; the recorder check still catches a compile from that format
// that reads outside or writes the recorder file; a source whose preamble a
// format would not reproduce gets none.
func TestFormatIsUsed(t *testing.T) {
	c, _ := newTestCompiler(t, Config{})
	for i := range 3 {
		if _, err := c.Compile(t.Context(), goodWorksheet); err != nil {
			t.Fatalf("compile %d: %v", i+1, err)
		}
		requireEqual(t, len(formatFiles(t, c)), min(i, 1), fmt.Sprintf("formats after compile %d", i+1))
	}
	requireEqual(t, c.formats.builds.Load(), int64(1), "builds")
	// The recorder check holds for compiles from a format: a read outside, or
	// a write to the recorder file, is caught.
	pre, _ := splitPreamble(goodWorksheet)
	for name, body := range map[string]string{
		"read outside":   "\\immediate\\pdfobj file {/proc/version}\\pdfcatalog{/X \\the\\pdflastobj\\space 0 R}hello",
		"recorder write": "\\newwrite\\f\\immediate\\openout\\f=main.fls\n\\immediate\\write\\f{PWD .}\\immediate\\closeout\\f hello",
	} {
		_, err := c.Compile(t.Context(), pre+"\\begin{document}\n"+body+"\n\\end{document}\n")
		requireEqual(t, errors.Is(err, ErrSandbox), true, name+": errors.Is ErrSandbox ("+errString(err)+")")
	}
	requireEqual(t, c.formats.builds.Load(), int64(1), "builds")
	tests := map[string]bool{
		goodWorksheet: true,
		"\\documentclass{article}\n\\begin{document}x\\end{document}":                         true,
		"\\documentclass{article}\n% \\begin{document}\n\\usepackage{x}\n\\begin{document}\n": false,
		"\\documentclass{article}\\begin{document}x\\end{document}":                           false,
		"\\documentclass{article}\n\\endofdump\n\\begin{document}\n":                          false,
		"\\documentclass{article}\n\\begin{documentation}\n\\begin{document}\n":               false,
		"\\begin{document}x\\end{document}":                                                   false,
		"hello":                                                                               false,
	}
	for src, want := range tests {
		_, ok := splitPreamble(src)
		requireEqual(t, ok, want, fmt.Sprintf("splitPreamble(%q) ok", src))
	}
}

// TestFormatBuildCannotReadOutside puts the jail attacks in the preamble, so
// that they run while the format is built: the secret, its hex and its MD5
// are in no PDF (streams inflated), log or error of any compile of that preamble, before or after its format exists,
// and formats were built for those that did not fail.
func TestFormatBuildCannotReadOutside(t *testing.T) {
	if !inChildWithSecret(t) {
		return
	}
	c, tmp := newTestCompiler(t, Config{})
	file, names := secretTargets(t, c)
	forbidden := secretSpellings(t, file)
	show := `\message{[\x]}\pdfinfo{/Subject (\x)}\pdfcompresslevel=0 \detokenize\expandafter{\x}`
	preambles := func(name string) map[string]string {
		return map[string]string{
			"pdffiledump":  `\edef\x{\pdffiledump offset 0 length 4000 {` + name + `}}`,
			"pdfmdfivesum": `\edef\x{\pdfmdfivesum file {` + name + `}}`,
			"openin read": `\newread\r\immediate\openin\r=` + name + ` \def\x{}` +
				`\ifeof\r\else\read\r to\x\fi`,
			"input": `\def\x{}\input{` + name + `}`,
		}
	}
	for target, name := range names {
		for attack, pre := range preambles(name) {
			t.Run(target+"/"+attack, func(t *testing.T) {
				src := "\\documentclass{article}\n" + pre + "\n\\begin{document}\n" + show + "\n\\end{document}\n"
				for range 3 {
					pdf, err := c.Compile(t.Context(), src)
					outputs := map[string]string{"pdf": pdfContent(pdf)}
					if err != nil {
						le := requireLatexError(t, err)
						outputs["log"], outputs["snippet"], outputs["message"] = le.Log, le.Snippet, le.Message
					}
					for what, out := range outputs {
						for _, f := range forbidden {
							requireNotContains(t, out, f, what)
						}
					}
				}
				requireEmptyDir(t, tmp)
			})
		}
	}
	t.Logf("%d formats built from hostile preambles", c.formats.builds.Load())
	if c.formats.builds.Load() == 0 {
		t.Error("no format was built: the attacks never ran in a build")
	}
}

// TestFormatHoldsOnlyThePreamble: a preamble that reads main.tex (the whole
// document, body included) or the build's own source while its format is
// built finds no body: the build sees only the preamble. Another document with the same preamble
// compiled from that format shows its own body, never the first one's.
func TestFormatHoldsOnlyThePreamble(t *testing.T) {
	c, _ := newTestCompiler(t, Config{})
	pre := "\\documentclass{article}\n" +
		`\edef\stolen{\pdffiledump offset 0 length 3000 {main.tex}\pdffiledump offset 0 length 3000 {pre.tex}}` + "\n" +
		`\newread\r\immediate\openin\r=main.tex \def\lines{}` +
		`\loop\unless\ifeof\r\readline\r to\l\edef\lines{\lines\l}\repeat` + "\n"
	doc := func(body string) string {
		return pre + "\\begin{document}\n" + body + "\n\\stolen\\par\\detokenize\\expandafter{\\lines}\n\\end{document}\n"
	}
	for range 2 {
		if _, err := c.Compile(t.Context(), doc("FIRSTUSERSBODY")); err != nil {
			t.Fatal(err)
		}
	}
	requireEqual(t, c.formats.builds.Load(), int64(1), "builds")
	pdf, err := c.Compile(t.Context(), doc("SECONDUSER"))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pdfText(t, pdf)
	requireContains(t, text, "SECONDUSER", "pdf text")
	for _, leak := range []string{"FIRSTUSERSBODY", strings.ToUpper(fmt.Sprintf("%x", "FIRSTUSERSBODY"))} {
		requireNotContains(t, text, leak, "pdf text")
		requireNotContains(t, pdfContent(pdf), leak, "pdf")
	}
}

// TestFormatCacheKeepsToItsSize: with room for two formats, a third evicts
// the least recently used one (a use counts), and the cache never holds more
// than its size.
func TestFormatCacheKeepsToItsSize(t *testing.T) {
	c, _ := newTestCompiler(t, Config{})
	doc := func(n int) string {
		return fmt.Sprintf("\\documentclass{article}\n\\def\\n{%d}\n\\begin{document}\n\\n\n\\end{document}\n", n)
	}
	compile := func(n, times int) {
		t.Helper()
		for range times {
			if _, err := c.Compile(t.Context(), doc(n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	compile(1, 2)
	files := formatFiles(t, c)
	requireEqual(t, len(files), 1, "formats")
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	c.formats.limit = fi.Size()*5/2 + 1024 // two formats of these preambles, not three
	compile(2, 2)
	compile(1, 1) // uses format 1: format 2 is now the least recently used
	compile(3, 2)
	key := func(n int) string { pre, _ := splitPreamble(doc(n)); return c.formats.path(c.formats.key(pre)) }
	for n, want := range map[int]bool{1: true, 2: false, 3: true} {
		_, err := os.Stat(key(n))
		requireEqual(t, err == nil, want, fmt.Sprintf("format %d kept", n))
	}
	var total int64
	for _, f := range formatFiles(t, c) {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	if total > c.formats.limit {
		t.Errorf("formats use %d bytes, limit %d", total, c.formats.limit)
	}
	requireEqual(t, c.formats.builds.Load(), int64(3), "builds")
}

// TestFormatBuiltOnceForConcurrentCompiles: compiles of one preamble started
// together, after its first, build its format once; the others compile plain
// meanwhile and all give the same text.
func TestFormatBuiltOnceForConcurrentCompiles(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	pdf, err := c.Compile(t.Context(), goodWorksheet)
	if err != nil {
		t.Fatal(err)
	}
	want := outcomeText(t, pdf, nil)
	const n = 4
	start := make(chan struct{})
	var wg sync.WaitGroup
	outs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			<-start
			pdf, err := c.Compile(t.Context(), goodWorksheet)
			outs[i] = outcomeText(t, pdf, err)
		})
	}
	close(start)
	wg.Wait()
	for _, o := range outs {
		requireEqual(t, o, want, "outcome")
	}
	requireEqual(t, c.formats.builds.Load(), int64(1), "builds")
	requireEqual(t, len(formatFiles(t, c)), 1, "formats")
	requireEmptyDir(t, tmp)
}

func TestParseFormatCacheSize(t *testing.T) {
	tests := map[string]int64{"off": -1, "OFF": -1, "512MiB": 512 << 20, "2GiB": 2 << 30, "4096KiB": 4 << 20, "1048576": 1 << 20}
	for in, want := range tests {
		got, err := ParseFormatCacheSize(in)
		if err != nil || got != want {
			t.Errorf("ParseFormatCacheSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-5MiB", "0", "1KiB", "512MB", "99999999999GiB"} {
		if _, err := ParseFormatCacheSize(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseFormatCacheSize(%q): err = %v, want ErrInvalidConfig", bad, err)
		}
	}
}
