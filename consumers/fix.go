package consumers

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// handleFix sends the parsed compile error and the LaTeX to the LLM in the job's
// conversation, stores the answer as the new LaTeX, counts the retry and compiles
// again. A failed fix call sends the job to waiting_manual ("AI fix failed").
func (p *Pipeline) handleFix(ctx context.Context, msg jetstream.Msg) error {
	_, j, owner, err := p.claim(ctx, msg, "Asking the LLM to fix the LaTeX")
	if err != nil {
		return err
	}
	failpoint.Inject(events.StageFix, failpoint.AfterClaim)
	info := ai.LatexErrorInfo{Message: j.ErrorMessage}
	if j.ErrorLog != nil {
		info.Snippet, info.Line = j.ErrorLog.Snippet, j.ErrorLog.Line
	}
	var answer, fallback string
	ctx, tl := withTally(ctx)
	fixErr := p.work(ctx, j.ID, owner, func(ctx context.Context) error {
		var err error
		answer, err = p.ask(ctx, j, events.StageFix, func(ctx context.Context, h []ai.Turn) (ai.Reply, error) {
			reply, err := p.llm.FixLatex(ctx, h, j.Latex, info)
			fallback = fallbackNote(reply)
			return reply, err
		})
		return err
	})
	failpoint.Inject(events.StageFix, failpoint.AfterWork)
	if perr, ok := p.overBudget(ctx, j, owner, events.StageFix, tl, fixErr); ok {
		return perr
	}
	// Only the LLM's own failure is "AI fix failed"; a lost lease, a shutdown, a
	// wait the provider asked for or a NATS error reading or recording the
	// conversation is retried like any other.
	llmFailed := errors.Is(fixErr, ai.ErrTransient) || errors.Is(fixErr, ai.ErrPermanent)
	if fixErr != nil && (!llmFailed || ctx.Err() != nil || errors.As(fixErr, new(*ai.RateLimitedError))) {
		return p.failed(ctx, j, owner, events.StageFix, fixErr)
	}
	t := noted(lifecycle.Fixed(owner, ai.Clean(answer)), fallback)
	if fixErr != nil {
		t = lifecycle.FixFailed(owner, fixErr)
	}
	if t, err = p.charge(ctx, j, tl.conversation(), t); err != nil {
		return err
	}
	j, err = p.finish(ctx, j.ID, owner, t)
	if err != nil {
		return err
	}
	failpoint.Inject(events.StageFix, failpoint.AfterWrite)
	if j.Status == events.StatusPending && p.metrics != nil {
		p.metrics.Retries.WithLabelValues(string(events.StageFix)).Inc()
	}
	return p.publishTicket(ctx, j)
}
