package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/oldstore"
)

// importReportJSON is the --json report as a script reads it.
type importReportJSON struct {
	DryRun  bool                      `json:"dry_run"`
	Counts  map[string]map[string]int `json:"counts"`
	Totals  map[string]int            `json:"totals"`
	Results []events.ImportResult     `json:"results"`
}

func runImport(t *testing.T, url string, args ...string) (result, importReportJSON) {
	t.Helper()
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), append([]string{"--server", url, "--json", "import"}, args...)...)
	var rep importReportJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return r, rep
}

// TestImportCommand runs sheetctl import on a generated old store of 36 jobs
// (two per old state; consumers' TestImportOldStore imports 216 and checks every
// field) against the whole pipeline, offline LLM and real pdflatex: a dry run writes nothing, the import names every
// broken record and exits 1 for them, shows progress, resumes the unfinished
// jobs, which complete, and a second run skips every job.
func TestImportCommand(t *testing.T) {
	s := startPipeline(t)
	c := newTestClient(t, s)
	ctx := testContext(t)
	dir := t.TempDir()
	old, err := oldstore.Generate(filepath.Join(dir, "pipeline"), filepath.Join(dir, "pdfs"), 36)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{old.Dir, "--pdf-dir", old.PDFDir}

	r, rep := runImport(t, s.ClientURL(), append(args, "--dry-run")...)
	if !rep.DryRun || rep.Totals[events.ImportResumed] == 0 || rep.Totals[events.ImportImported] == 0 {
		t.Fatalf("dry run report %+v", rep.Totals)
	}
	if list, err := c.List(ctx, events.ListQuery{}); err != nil || len(list.Jobs) != 0 {
		t.Fatalf("dry run stored %d jobs (%v)", len(list.Jobs), err)
	}

	r, rep = runImport(t, s.ClientURL(), args...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "5 of 41 records refused") {
		t.Fatalf("import exited %d, stderr %q; want 1 for the 5 broken records", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "import: 39/39 jobs") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	refused := map[string]string{}
	for _, res := range rep.Results {
		if res.Outcome == events.ImportRefused {
			refused[res.Source] = res.Reason
		}
	}
	for _, src := range old.Broken {
		if refused[src] == "" {
			t.Errorf("broken record %s not refused by name; refusals %v", src, refused)
		}
	}
	if got := rep.Totals[events.ImportImported] + rep.Totals[events.ImportResumed]; got != len(old.Jobs) {
		t.Fatalf("imported %d jobs, want %d: %v", got, len(old.Jobs), rep.Totals)
	}
	for _, res := range rep.Results {
		if res.Outcome != events.ImportResumed {
			continue
		}
		if last := waitRun(ctx, t, c, res.JobID, 0); last.Status != events.StatusCompleted {
			t.Fatalf("resumed job %s (%s) ended %s: %s", res.JobID, res.OldStatus, last.Status, last.Message)
		}
	}

	_, rep = runImport(t, s.ClientURL(), args...)
	if rep.Totals[events.ImportSkipped] != len(old.Jobs) || rep.Totals[events.ImportImported]+rep.Totals[events.ImportResumed] != 0 {
		t.Fatalf("second import: %v, want every job skipped", rep.Totals)
	}
}

// TestImportTable prints the default report: counts per old status and every
// refusal named.
func TestImportTable(t *testing.T) {
	s := startPipeline(t)
	dir := t.TempDir()
	old, err := oldstore.Generate(filepath.Join(dir, "pipeline"), filepath.Join(dir, "pdfs"), 18)
	if err != nil {
		t.Fatal(err)
	}
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "--server", s.ClientURL(), "import", "--dry-run", old.Dir)
	for _, want := range append([]string{"Dry run: nothing was written", "old status", "completed", "waiting_ai_fix", "total",
		"Refused (5):", `unknown status "exploded"`, "malformed JSON", "is not in the store", "PDF missing"}, old.Broken...) {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestImportUsage(t *testing.T) {
	r := runSheetctl(testContext(t), nil, "", t.TempDir(), "--server", closedURL(t), "import")
	if r.code != exitUsage {
		t.Fatalf("import without a directory exited %d", r.code)
	}
	r = runSheetctl(testContext(t), nil, "", t.TempDir(), "--server", closedURL(t), "import", t.TempDir())
	if r.code != exitFailure || !strings.Contains(r.stderr, "neither jobs.json nor a jobs/ directory") {
		t.Fatalf("import of an empty directory exited %d: %s", r.code, r.stderr)
	}
}
