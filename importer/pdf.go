package importer

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
)

// pdfFinder looks up the file a job's pdf_url names under the store directory
// and the PDF directory. Each is opened as an os.Root, so a pdf_url cannot
// reach a file outside them ("../../etc/passwd", an absolute path, a symbolic
// link pointing out).
type pdfFinder struct {
	roots []*os.Root
}

func newPDFFinder(dirs ...string) (*pdfFinder, error) {
	f := &pdfFinder{}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		r, err := os.OpenRoot(d)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("open PDF directory: %w", err)
		}
		f.roots = append(f.roots, r)
	}
	return f, nil
}

func (f *pdfFinder) close() {
	for _, r := range f.roots {
		r.Close()
	}
}

// wantsPDF reports whether a job in status st keeps a PDF: one resumed is
// compiled again, so its old PDF is not sent.
func wantsPDF(st events.Status) bool {
	return st == events.StatusCompleted || st == events.StatusAborted || st == events.StatusWaitingManual
}

// find sets rec's PDF file: the pdf_url's path, then its file name, under each
// directory in turn; or the note of why none was found.
func (f *pdfFinder) find(rec *Record) {
	ref := rec.Job.PDFURL
	if ref == "" || !wantsPDF(rec.Job.Status) {
		return
	}
	p := ref
	if u, err := url.Parse(ref); err == nil && (u.Scheme != "" || u.Host != "") {
		p = u.Path
	}
	p = strings.TrimLeft(path.Clean("/"+strings.ReplaceAll(p, "\\", "/")), "/")
	candidates := []string{p}
	if base := path.Base(p); base != p && base != "." && base != "/" {
		candidates = append(candidates, base)
	}
	for _, r := range f.roots {
		for _, c := range candidates {
			st, err := r.Stat(c)
			if err == nil && st.Mode().IsRegular() {
				rec.pdfRoot, rec.pdfPath = r.Name(), c
				return
			}
		}
	}
	rec.PDFNote = fmt.Sprintf("no file %s under the store or --pdf-dir", p)
}

// Load returns the record to send, its PDF read when it has one of at most
// maxPDF bytes; a larger or unreadable one is left out with a note.
func (r Record) Load(maxPDF int64) events.ImportRecord {
	rec := r.ImportRecord
	if r.pdfPath == "" {
		return rec
	}
	data, err := readLimited(r.pdfRoot, r.pdfPath, maxPDF)
	switch {
	case errors.Is(err, errTooLarge):
		rec.PDFNote = fmt.Sprintf("the PDF %s is larger than the %d bytes one import request can carry", r.pdfPath, maxPDF)
	case err != nil:
		rec.PDFNote = fmt.Sprintf("read PDF: %v", err)
	default:
		rec.PDF = data
	}
	return rec
}

// HasPDF reports whether a PDF file was found for the record.
func (r Record) HasPDF() bool { return r.pdfPath != "" }

var errTooLarge = errors.New("too large")

// readLimited reads file name under dir, never outside it.
func readLimited(dir, name string, limit int64) ([]byte, error) {
	f, err := os.OpenInRoot(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}
