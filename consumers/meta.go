package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// handleMeta writes the description and tags of the LaTeX a meta ticket names.
// It runs beside the pipeline: it takes no lease, never changes the job's status
// or step and emits no status event, so no stage waits for it and a stage worker
// holding the job's lease is not disturbed by its write (a CAS that touches only
// description, tags and the meta bookkeeping). A ticket whose job is gone or
// aborted, whose LaTeX was replaced since (by a refine, a new latex run or an
// edit, each of which sends its own ticket) or that was already described is
// acked. A failure is retried with back-off until MetaAttempts deliveries tried;
// then the stage gives up (the job keeps no description) and acks.
func (p *Pipeline) handleMeta(ctx context.Context, msg jetstream.Msg) error {
	t, err := decodeTicket(msg)
	if err != nil {
		return err
	}
	if t.Stage != events.StageMeta {
		return fmt.Errorf("%w: %s ticket on %s", ErrPermanent, t.Stage, events.SubjectMeta)
	}
	j, rev, err := p.store.Get(ctx, t.JobID)
	if err != nil {
		return p.metaFailed(ctx, msg, t, fmt.Errorf("load job %s: %w", t.JobID, err))
	}
	if err := lifecycle.MetaStale(j, t.Seq); err != nil {
		return verdict(err)
	}
	desc, tags, replies, err := p.describe(ctx, j)
	var be *lifecycle.BudgetError
	if errors.As(err, &be) {
		return p.metaOverBudget(ctx, t, be)
	}
	if err != nil {
		return p.metaFailed(ctx, msg, t, err)
	}
	described, err := p.chargeMeta(ctx, j, t.Seq, replies, lifecycle.Describe(t.Seq, func(m *lifecycle.Meta) {
		m.Description, m.Tags, m.Error = desc, tags, ""
	}))
	if err == nil {
		err = p.writeMetaWith(ctx, t, described, lifecycle.From(j, rev))
	}
	switch {
	case errors.Is(err, ErrStale):
		return err
	case err != nil:
		return p.metaFailed(ctx, msg, t, err)
	}
	p.log.InfoContext(ctx, "description written", "job_id", t.JobID, "step", events.StageMeta, "tags", len(tags))
	return nil
}

// describe asks for the description and the tags of j's LaTeX at once, in the
// job's conversation, and returns them with the two replies; the first failure
// cancels the other call. No call is made once the job's recorded tokens
// reached its token budget (a *lifecycle.BudgetError).
func (p *Pipeline) describe(ctx context.Context, j *events.Job) (string, []string, []ai.Reply, error) {
	conv, history, err := p.history(ctx, j)
	if err != nil {
		return "", nil, nil, err
	}
	if err := lifecycle.CheckBudget(j, pendingTokens(conv, j)); err != nil {
		return "", nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		desc, tagsReply  ai.Reply
		tags             []string
		descErr, tagsErr error
		wg               sync.WaitGroup
	)
	wg.Go(func() {
		start := time.Now()
		desc, descErr = p.llm.GenerateDescription(ctx, history, j.Latex)
		p.llmCall(events.StageMeta, start, desc)
		if descErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		start := time.Now()
		var reply ai.Reply
		tags, reply, tagsErr = p.llm.GenerateTags(ctx, history, j.Latex)
		p.llmCall(events.StageMeta, start, reply)
		tagsReply = reply
		if tagsErr != nil {
			cancel()
		}
	})
	wg.Wait()
	if err := firstCause(descErr, tagsErr); err != nil {
		return "", nil, nil, fmt.Errorf("describe job %s: %w", j.ID, err)
	}
	return desc.Text, tags, []ai.Reply{desc, tagsReply}, nil
}

// firstCause is the error that failed a pair of calls: the one that is not the
// other's cancellation.
func firstCause(a, b error) error {
	if a == nil || (errors.Is(a, context.Canceled) && b != nil) {
		return b
	}
	return a
}

// history is the job's conversation and its turns (none before its first answer).
func (p *Pipeline) history(ctx context.Context, j *events.Job) (*events.Conversation, []ai.Turn, error) {
	conv, _, _, err := p.conversation(ctx, j, events.StageMeta)
	if err != nil {
		return nil, nil, fmt.Errorf("load conversation %s: %w", j.ConversationID, err)
	}
	turns := make([]ai.Turn, 0, len(conv.Messages))
	for _, m := range conv.Messages {
		turns = append(turns, ai.Turn{Role: m.Role, Content: m.Content})
	}
	return conv, turns, nil
}

// writeMeta records fn's meta fields for the LaTeX of ticket t, unless the job no
// longer waits for them. It goes through the CAS loop but not through apply: the
// job's status does not change, so there is no status event, and EventRev keeps
// the revision of the last one for a re-emit to repeat.
func (p *Pipeline) writeMeta(ctx context.Context, t events.Ticket, fn func(*lifecycle.Meta), opts ...lifecycle.Option) error {
	return p.writeMetaWith(ctx, t, lifecycle.Describe(t.Seq, fn), opts...)
}

// writeMetaWith is writeMeta of tr, a Describe transition (charged with the
// meta stage's calls).
func (p *Pipeline) writeMetaWith(ctx context.Context, t events.Ticket, tr lifecycle.Transition, opts ...lifecycle.Option) error {
	_, _, err := p.x.Apply(ctx, t.JobID, tr, opts...)
	if errors.Is(err, kvstore.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	return verdict(err)
}

// metaFailed settles a meta ticket whose work failed: a shutdown hands it back,
// a failure is retried with back-off while deliveries remain, and then (or at
// once for a permanent LLM refusal) the stage gives up, recording why on the
// job. A job that is gone or aborted meanwhile makes the ticket stale.
func (p *Pipeline) metaFailed(ctx context.Context, msg jetstream.Msg, t events.Ticket, cause error) error {
	switch {
	case ctx.Err() != nil:
		return cause
	case errors.Is(cause, kvstore.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrStale, cause)
	}
	delivered := 1
	if md, err := msg.Metadata(); err == nil {
		delivered = int(md.NumDelivered)
	}
	if delivered < p.cfg.MetaAttempts && !errors.Is(cause, ai.ErrPermanent) {
		if p.metrics != nil {
			p.metrics.Retries.WithLabelValues(string(events.StageMeta)).Inc()
		}
		delay := p.cfg.backoff(delivered)
		if rl := (*ai.RateLimitedError)(nil); errors.As(cause, &rl) {
			delay = rl.Wait // the provider's wait (still one of MetaAttempts)
		}
		p.log.WarnContext(ctx, "description failed; retrying", "job_id", t.JobID, "step", events.StageMeta,
			"attempt", delivered, "delay", delay, "error", cause)
		return &RetryError{Delay: delay, Err: cause}
	}
	err := p.writeMeta(ctx, t, func(m *lifecycle.Meta) { m.Error = cause.Error() })
	if err != nil && !errors.Is(err, ErrStale) {
		return err
	}
	p.log.ErrorContext(ctx, "description given up", "job_id", t.JobID, "step", events.StageMeta,
		"attempts", delivered, "error", cause)
	return fmt.Errorf("%w: %w", errGaveUp, cause)
}

// metaOverBudget gives up on the meta ticket of a job whose token budget is
// reached, without asking the LLM: the job keeps no description and its
// meta_error says why. The job itself is not parked here: the meta stage runs
// beside the pipeline, and the job's next LLM call of a stage stops it.
func (p *Pipeline) metaOverBudget(ctx context.Context, t events.Ticket, be *lifecycle.BudgetError) error {
	err := p.writeMeta(ctx, t, func(m *lifecycle.Meta) { m.Error = "meta: " + be.Error() })
	if err != nil && !errors.Is(err, ErrStale) {
		return err
	}
	p.log.WarnContext(ctx, "description skipped: token budget reached", "job_id", t.JobID, "step", events.StageMeta,
		"budget", be.Budget, "used", be.Used)
	return fmt.Errorf("%w: %w", errGaveUp, be)
}
