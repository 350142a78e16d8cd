package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// handleCompile compiles the job's LaTeX in the sandbox. A PDF completes the job; a
// document error goes to the fix stage while the retry budget lasts, else (or after
// a manual edit, or in manual mode) to waiting_manual with the error log.
func (p *Pipeline) handleCompile(ctx context.Context, msg jetstream.Msg) error {
	_, j, owner, err := p.claim(ctx, msg, "Compiling with pdflatex")
	if err != nil {
		return err
	}
	failpoint.Inject(events.StageCompile, failpoint.AfterClaim)
	err = p.work(ctx, j.ID, owner, func(ctx context.Context) error {
		pdf, err := p.compilePDF(ctx, j.Latex)
		if err != nil {
			return err
		}
		// A worker that lost the job while compiling must not overwrite the PDF of
		// the LaTeX its successor compiles.
		if err := p.stillLeased(ctx, j.ID, owner); err != nil {
			return err
		}
		if _, err := p.pdfs.PutBytes(ctx, j.ID+".pdf", pdf); err != nil {
			return fmt.Errorf("store pdf %s: %w", j.ID, err)
		}
		return nil
	})
	failpoint.Inject(events.StageCompile, failpoint.AfterWork)
	var le *latex.LatexError
	switch {
	case errors.As(err, &le):
		j, err = p.finish(ctx, j.ID, owner, lifecycle.CompileFailed(owner,
			lifecycle.CompileError{Message: le.Message, Log: le.Log, Snippet: le.Snippet, Line: le.Line}))
	case err != nil:
		return p.failed(ctx, j, owner, events.StageCompile, err)
	default:
		j, err = p.finish(ctx, j.ID, owner, lifecycle.Completed(owner, p.cfg.PublicURL+"/jobs/"+j.ID+"/pdf"))
	}
	if err != nil {
		return err
	}
	failpoint.Inject(events.StageCompile, failpoint.AfterWrite)
	p.log.InfoContext(ctx, "compile done", "job_id", j.ID, "status", j.Status)
	return p.publishTicket(ctx, j)
}

// compilePDF compiles source, or takes its PDF from the cache when the same source
// compiled before.
func (p *Pipeline) compilePDF(ctx context.Context, source string) ([]byte, error) {
	start := time.Now()
	pdf, cached, err := p.cache.compile(ctx, source, func() ([]byte, error) {
		return p.compile.Compile(ctx, source)
	})
	outcome := compileOutcome(err)
	if cached {
		outcome = "cached"
	}
	p.metrics.Compiled(outcome, time.Since(start))
	return pdf, err
}

func compileOutcome(err error) string {
	var le *latex.LatexError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, latex.ErrTimeout):
		return "timeout"
	case errors.As(err, &le):
		return "latex_error"
	}
	return "error"
}
