package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/internal/oldstore"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestImportFigure measures sheetctl import of a generated old store of
// SHEETPIPE_IMPORT_JOBS jobs (with conversations and PDFs) into a service that
// runs no stage, so the figure is the import's own; it asserts nothing on speed
// and is skipped unless the variable is set. BENCHMARKS.md reports its figure:
//
//	SHEETPIPE_IMPORT_JOBS=10000 go test -count=1 -run TestImportFigure -v ./cmd/sheetctl/
func TestImportFigure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SHEETPIPE_IMPORT_JOBS"))
	if n <= 0 {
		t.Skip("set SHEETPIPE_IMPORT_JOBS to measure an import")
	}
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	store, err := kvstore.New(ctx, s.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := control.New(ctx, control.Config{}, control.Deps{JS: s.JS, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	controlAPI := api.New(p, api.Config{}, nil)
	if err := controlAPI.StartMicro(s.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = controlAPI.Stop() })
	dir := t.TempDir()
	old, err := oldstore.Generate(filepath.Join(dir, "pipeline"), filepath.Join(dir, "pdfs"), n)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "import", old.Dir, "--pdf-dir", old.PDFDir)
	took := time.Since(start)
	t.Logf("imported %d jobs (%d conversations, %d PDFs) in %s (%.0f jobs/s); exit %d\n%s%s",
		len(old.Jobs), len(old.Conversations), len(old.PDFs), took.Round(time.Millisecond),
		float64(len(old.Jobs))/took.Seconds(), r.code, r.stdout, r.stderr)
}
