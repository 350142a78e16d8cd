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
		if err := p.renew(ctx, j.ID, owner); err != nil {
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
		j, err = p.finish(ctx, j.ID, owner, func(j *events.Job) { compileFailed(j, le) })
	case err != nil:
		return p.failed(ctx, j, owner, events.StageCompile, err)
	default:
		j, err = p.finish(ctx, j.ID, owner, func(j *events.Job) {
			j.Status = events.StatusCompleted
			j.CurrentStep = events.StepDone
			j.PDFURL = p.cfg.PublicURL + "/jobs/" + j.ID + "/pdf"
			j.ErrorMessage = ""
			j.ErrorLog = nil
			j.Stage = ""
			j.Message = "PDF ready"
		})
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

func compileFailed(j *events.Job, le *latex.LatexError) {
	j.ErrorLog = &events.ErrorLog{Log: le.Log, Snippet: le.Snippet, Line: le.Line}
	j.ErrorMessage = le.Message
	where := ""
	if le.Line > 0 {
		where = fmt.Sprintf(" at line %d", le.Line)
	}
	switch {
	case j.ManualEdit || j.Mode == events.ModeManual:
		j.Status = events.StatusWaitingManual
		j.Stage = ""
		j.Message = fmt.Sprintf("Compile failed%s: %s; edit the LaTeX to continue", where, le.Message)
	case j.RetryCount >= j.MaxRetries:
		j.Status = events.StatusWaitingManual
		j.Stage = ""
		j.ErrorMessage = "Max retries exceeded: " + le.Message
		j.Message = "Max retries exceeded"
	default:
		advance(j, events.StageFix, events.StepCompile,
			fmt.Sprintf("Compile failed%s: %s; asking the LLM for fix %d/%d", where, le.Message, j.RetryCount+1, j.MaxRetries))
		j.Status = events.StatusWaitingAIFix
	}
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
