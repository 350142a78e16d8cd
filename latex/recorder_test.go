package latex

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheckRecorder(t *testing.T) {
	const dir = "/tmp/latex-123"
	roots := []string{"/usr/share/texlive/texmf-dist", "/var/lib/texmf"}
	head := "PWD " + dir + "\nINPUT main.tex\nOUTPUT main.log\n"
	tests := []struct {
		name string
		fls  string // "" writes no file
		want string // "" means clean
	}{
		{name: "missing file", want: "pdflatex wrote no recorder file main.fls"},
		{name: "clean run", fls: head + "INPUT /var/lib/texmf/web2c/pdftex/pdflatex.fmt\n" +
			"INPUT /usr/share/texlive/texmf-dist/tex/latex/base/article.cls\nINPUT ./main.aux\n" +
			"OUTPUT main.aux\nINPUT " + dir + "/texmf-var/fonts/x.pk\nOUTPUT main.pdf\n"},
		{name: "absolute path outside", fls: head + "INPUT /etc/passwd\n",
			want: "document accessed a file outside the sandbox: /etc/passwd"},
		{name: "relative path outside", fls: head + "INPUT ../../etc/passwd\n",
			want: "document accessed a file outside the sandbox: ../../etc/passwd"},
		{name: "dot-dot out of a tree", fls: head + "INPUT /var/lib/texmf/../../../etc/shadow\n",
			want: "document accessed a file outside the sandbox: /var/lib/texmf/../../../etc/shadow"},
		{name: "root prefix is not a tree", fls: head + "INPUT /var/lib/texmf-secret/key\n",
			want: "document accessed a file outside the sandbox: /var/lib/texmf-secret/key"},
		{name: "write to the recorder file", fls: head + "OUTPUT ./main.fls\n",
			want: "document wrote to the recorder file main.fls"},
		{name: "second write to the log", fls: head + "OUTPUT main.log\n",
			want: "document wrote to the log main.log"},
		{name: "overwritten", fls: "\x00\x00PWD .\n" + head,
			want: "document overwrote the recorder file main.fls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), recorderName)
			if tt.fls != "" {
				if err := os.WriteFile(path, []byte(tt.fls), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := checkRecorder(path, dir, roots)
			if err != nil {
				t.Fatalf("checkRecorder: %v", err)
			}
			requireEqual(t, got, tt.want, "violation")
		})
	}
}
