package latex

import (
	"bytes"
	"compress/zlib"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// pdfStreamRE finds a PDF stream's data.
var pdfStreamRE = regexp.MustCompile(`(?s)stream\r?\n(.*?)endstream`)

// pdfContent returns pdf with every Flate stream inflated after it, so that
// text a document typeset can be searched for.
func pdfContent(pdf []byte) string {
	var b bytes.Buffer
	b.Write(pdf)
	for _, m := range pdfStreamRE.FindAllSubmatch(pdf, -1) {
		if r, err := zlib.NewReader(bytes.NewReader(m[1])); err == nil {
			_, _ = io.Copy(&b, io.LimitReader(r, 16<<20))
		}
	}
	return b.String()
}

// The packages installed for worksheets bring file-reading commands of their
// own: pgfplots tables, listings, verbatim, tcolorbox listings. A document
// using them on /etc/passwd, or on a secret file planted next to the job's
// work directory (absolute and relative), gets nothing of those files into
// the PDF, the log or the LatexError. The test uses only Compile, so it holds
// whatever confines pdflatex (the recorder check, a jail).
func TestCompileHostilePackageReads(t *testing.T) {
	c, tmp := newTestCompiler(t, Config{})
	const secret = "SHEETPIPESECRETtoken8675309"
	secretPath := filepath.Join(tmp, "secret.dat")
	if err := os.WriteFile(secretPath, []byte("x y "+secret+"\n1 2 3\n"+secret+" 4 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	markers := append(passwdMarkers(t), "root:x:0:0", secret, "8675309")
	preamble := "\\usepackage{pgfplots}\\pgfplotsset{compat=1.18}\\usepackage{pgfplotstable}\n" +
		"\\usepackage{listings}\\usepackage{verbatim}\\usepackage[listings]{tcolorbox}\n"
	for _, file := range []struct{ name, path string }{
		{"passwd", "/etc/passwd"},
		{"secret absolute", secretPath},
		{"secret relative", "../secret.dat"},
	} {
		for _, read := range []struct{ name, body string }{
			{"pgfplotstableread", `\pgfplotstableread{` + file.path + `}\t \pgfplotstabletypeset[string type]{\t}`},
			{"pgfplotstabletypeset file", `\pgfplotstabletypeset[string type]{` + file.path + `}`},
			{"pgfplots addplot table", `\begin{tikzpicture}\begin{axis}\addplot table {` + file.path + `};\end{axis}\end{tikzpicture}`},
			{"lstinputlisting", `\lstinputlisting{` + file.path + `}`},
			{"verbatiminput", `\verbatiminput{` + file.path + `}`},
			{"tcbinputlisting", `\tcbinputlisting{listing file=` + file.path + `}`},
		} {
			t.Run(file.name+"/"+read.name, func(t *testing.T) {
				source := "\\documentclass{article}\n" + preamble + "\\begin{document}\nhello\n" + read.body + "\n\\end{document}\n"
				pdf, err := c.Compile(t.Context(), source)
				outputs := map[string]string{"pdf": pdfContent(pdf)}
				if err != nil {
					le := requireLatexError(t, err)
					outputs["log"], outputs["snippet"], outputs["message"] = le.Log, le.Snippet, le.Message
					outputs["error"] = err.Error()
				}
				for what, out := range outputs {
					for _, m := range markers {
						requireNotContains(t, out, m, what)
					}
				}
			})
		}
	}
}
