package consumers_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// compiles is how many compiles of outcome the pipeline recorded.
func compiles(t *testing.T, e *env, outcome string) uint64 {
	t.Helper()
	return histogramCount(t, e.metrics.CompileDuration.WithLabelValues(outcome))
}

// Identical LaTeX is compiled once: jobs that compile it at the same time wait
// for the first compile, and a later job takes the PDF from the cache.
func TestIdenticalLatexCompiledOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""), func(c *testpipeline.Setup) {
		c.Pipeline.Concurrency = map[events.Stage]int{events.StageCompile: 3}
	})
	var ids []string
	for range 3 {
		id := uuid.NewString()
		ids = append(ids, id)
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	}
	for _, id := range ids {
		e.waitStatus(id, events.StatusCompleted)
	}
	late := uuid.NewString()
	e.submit(events.JobRequest{JobID: late, UserID: "u", Prompt: "fractions again"})
	e.waitStatus(late, events.StatusCompleted)
	ids = append(ids, late)

	if n := compiles(t, e, "ok"); n != 1 {
		t.Fatalf("pdflatex ran %d times for one source, want 1", n)
	}
	if n := compiles(t, e, "cached"); n != 3 {
		t.Fatalf("%d compiles served from the cache, want 3", n)
	}
	first := e.pdf(ids[0])
	for _, id := range ids[1:] {
		if !bytes.Equal(e.pdf(id), first) {
			t.Fatalf("job %s has a different PDF for the same LaTeX", id)
		}
	}
}

// With the cache off every job compiles, which is what the test above would see
// without the cache.
func TestCompileCacheOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", goodLatex, ""), func(c *testpipeline.Setup) { c.Pipeline.NoCompileCache = true })
	for range 2 {
		id := uuid.NewString()
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
		e.waitStatus(id, events.StatusCompleted)
	}
	if ok, cached := compiles(t, e, "ok"), compiles(t, e, "cached"); ok != 2 || cached != 0 {
		t.Fatalf("compiles ok=%d cached=%d, want 2 and 0", ok, cached)
	}
}

// A source that fails to compile is not cached: a second job with it fails the
// same way after its own compile.
func TestFailedCompileNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("design", brokenLatex, ""))
	for range 2 {
		id := uuid.NewString()
		e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", Mode: events.ModeManual})
		e.waitStatus(id, events.StatusWaitingManual)
	}
	if n := compiles(t, e, "latex_error"); n != 2 {
		t.Fatalf("%d failed compiles recorded, want 2", n)
	}
}
