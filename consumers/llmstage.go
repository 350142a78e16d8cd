package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// llmStep describes one LLM stage: what it asks and what it does with the answer.
type llmStep struct {
	stage   events.Stage
	running string
	// prepare returns what call works from; it may ask the LLM itself.
	prepare func(ctx context.Context, j *events.Job) (string, error)
	// call asks the LLM; refs are the final LaTeX of the jobs the job depends on.
	call func(ctx context.Context, history []ai.Turn, input string, refs []ai.Reference) (ai.Reply, error)
	// done is the transition that records the answer, made from input.
	done func(owner, input, answer string) lifecycle.Transition
}

// refineTag tags the conversation turns of a refinement, which the design stage
// asks for before designing again; it is not a stage of its own.
const refineTag events.Stage = "refine"

func (p *Pipeline) handleDesign(ctx context.Context, msg jetstream.Msg) error {
	return p.runLLM(ctx, msg, llmStep{
		stage:   events.StageDesign,
		running: "Generating design",
		prepare: p.designRequest,
		call: func(ctx context.Context, h []ai.Turn, request string, refs []ai.Reference) (ai.Reply, error) {
			return p.llm.GenerateDesign(ctx, h, request, refs...)
		},
		done: lifecycle.Designed,
	})
}

// designRequest is the request the design stage designs from: with a refinement
// pending, the LLM's revision of the request in the whole conversation so far.
func (p *Pipeline) designRequest(ctx context.Context, j *events.Job) (string, error) {
	if j.Refinement == "" {
		return j.Request(), nil
	}
	revised, err := p.ask(ctx, j, refineTag, func(ctx context.Context, h []ai.Turn) (ai.Reply, error) {
		return p.llm.RefinePrompt(ctx, h, j.Refinement)
	})
	return ai.Clean(revised), err
}

func (p *Pipeline) handleLatex(ctx context.Context, msg jetstream.Msg) error {
	return p.runLLM(ctx, msg, llmStep{
		stage:   events.StageLatex,
		running: "Generating LaTeX",
		prepare: func(_ context.Context, j *events.Job) (string, error) { return j.Design, nil },
		call: func(ctx context.Context, h []ai.Turn, design string, refs []ai.Reference) (ai.Reply, error) {
			return p.llm.GenerateLatex(ctx, h, design, refs...)
		},
		done: func(owner, _, answer string) lifecycle.Transition {
			return lifecycle.LatexWritten(owner, answer)
		},
	})
}

func (p *Pipeline) runLLM(ctx context.Context, msg jetstream.Msg, s llmStep) error {
	_, j, owner, err := p.claim(ctx, msg, s.running)
	if err != nil {
		return err
	}
	failpoint.Inject(s.stage, failpoint.AfterClaim)
	var input, answer, fallback string
	var done lifecycle.Transition
	ctx, tl := withTally(ctx)
	err = p.work(ctx, j.ID, owner, func(ctx context.Context) error {
		var err error
		if input, err = s.prepare(ctx, j); err != nil {
			return err
		}
		refs, err := p.references(ctx, j)
		if err != nil {
			return err
		}
		answer, err = p.ask(ctx, j, s.stage, func(ctx context.Context, h []ai.Turn) (ai.Reply, error) {
			reply, err := s.call(ctx, h, input, refs)
			fallback = fallbackNote(reply)
			return reply, err
		})
		if err != nil {
			return err
		}
		// Counted while the lease is kept: a count that waits out a NATS
		// outage must not let the job's lease lapse, or the job would be
		// recovered as a new hand-off whose answer is paid for again.
		done, err = p.charge(ctx, j, tl.conversation(), noted(s.done(owner, input, ai.Clean(answer)), fallback))
		return err
	})
	failpoint.Inject(s.stage, failpoint.AfterWork)
	if perr, ok := p.overBudget(ctx, j, owner, s.stage, tl, err); ok {
		return perr
	}
	if err != nil {
		return p.failed(ctx, j, owner, s.stage, err)
	}
	j, err = p.finish(ctx, j.ID, owner, done)
	if err != nil {
		return err
	}
	failpoint.Inject(s.stage, failpoint.AfterWrite)
	return p.publishTicket(ctx, j)
}

// ask returns the LLM's answer for the job's current hand-off: the one already
// recorded in the conversation (a ticket redelivered after a crash), or a new one,
// which is recorded, with its model and usage, before it is used. A new one is
// not asked for once the job's recorded tokens reached its token budget (a
// *lifecycle.BudgetError). The conversation the answer is in is noted for the
// stage's write (tally).
func (p *Pipeline) ask(ctx context.Context, j *events.Job, stage events.Stage,
	call func(context.Context, []ai.Turn) (ai.Reply, error)) (string, error) {
	conv, held, convRev, err := p.conversation(ctx, j, stage)
	if err != nil {
		return "", err
	}
	if m, ok := j.RecordedAnswer(conv, stage); ok {
		p.log.InfoContext(ctx, "reusing recorded answer", "job_id", j.ID, "step", stage)
		noteConversation(ctx, conv)
		return m.Content, nil
	}
	if err := lifecycle.CheckBudget(j, pendingTokens(conv, j)); err != nil {
		noteConversation(ctx, conv)
		return "", err
	}
	history := make([]ai.Turn, 0, len(conv.Messages))
	for _, m := range conv.Messages {
		history = append(history, ai.Turn{Role: m.Role, Content: m.Content})
	}
	start := time.Now()
	reply, err := call(ctx, history)
	p.llmCall(stage, start, reply)
	if err != nil {
		return "", err
	}
	return p.record(ctx, j, stage, held, convRev, reply)
}

// llmCall records a call to the language model started at start: its time,
// and the tokens and cost of reply by the model that gave it; the offline
// provider makes none, so its answers are not counted.
func (p *Pipeline) llmCall(stage events.Stage, start time.Time, reply ai.Reply) {
	if p.llm.Provider() == ai.ProviderOffline {
		return
	}
	model := reply.Model
	if model == "" { // a failed call
		model = p.llm.ModelFor(string(stage))
	}
	u := reply.Usage
	cost := p.cfg.Prices.Cost(model, int64(u.PromptTokens), int64(u.CompletionTokens))
	p.metrics.LLMCall(string(stage), model, time.Since(start), u.PromptTokens, u.CompletionTokens, cost)
}

// conversation returns job j's conversation as the stage asking the LLM
// starts from, and the value its answer's write starts from (nil: create the
// conversation) at rev. A claim that found the job still waiting for its
// hand-off is the first of that hand-off: no answer is recorded for it, so it
// needs no read when this process knows the conversation: a job's first
// design (nothing wrote its conversation yet; an imported job may bring one),
// or a conversation this process wrote last (the meta stage, which records
// nothing, takes that too). A value someone changed since costs the answer's
// write one refused attempt and a read, as without it. A job the sweeper
// recovered is always read: an answer of its run may have been recorded by
// another process, and asking again would pay for it twice.
func (p *Pipeline) conversation(ctx context.Context, j *events.Job, stage events.Stage) (conv, held *events.Conversation, rev uint64, err error) {
	if (freshClaim(ctx) || stage == events.StageMeta) && j.RecoveredFrom == 0 {
		if stage == events.StageDesign && j.Seq == 1 && j.Imported == nil && j.Refinement == "" {
			return &events.Conversation{}, nil, 0, nil
		}
		if c, rev := p.convs.peek(j.ConversationID); c != nil {
			return c, c, rev, nil
		}
	}
	c, rev, err := p.store.Conversation(ctx, j.ConversationID)
	if errors.Is(err, kvstore.ErrNotFound) {
		return &events.Conversation{}, nil, 0, nil
	}
	return c, c, rev, err
}

const (
	// recordAnswerFor bounds how long an answer the conversation's stream did
	// not take (no leader after a node loss, an election) is kept and offered
	// again; the work's context ends sooner when the job's lease is lost.
	recordAnswerFor = 2 * time.Minute
	// recordAttemptTimeout bounds one attempt to record an answer.
	recordAttemptTimeout = 5 * time.Second
)

// record writes reply into the job's conversation, tagged with the hand-off, and
// returns the answer to use: the one recorded first when another worker recorded
// one. A write that fails is tried again, from a fresh read, until it is taken
// or recordAnswerFor or the lease ends: an answer is paid for, and dropping it
// would pay for it again.
func (p *Pipeline) record(ctx context.Context, j *events.Job, stage events.Stage, held *events.Conversation, rev uint64, reply ai.Reply) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, recordAnswerFor)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		actx, cancelAttempt := context.WithTimeout(ctx, recordAttemptTimeout)
		answer, c, err := p.recordOnce(actx, j, stage, held, rev, reply)
		cancelAttempt()
		if err == nil {
			noteConversation(ctx, c)
		}
		if err == nil || kvstore.IsStorage(err) {
			return answer, err
		}
		p.log.WarnContext(ctx, "record answer: keeping it to record again", "job_id", j.ID, "step", stage, "error", err)
		held, rev = nil, 0
		if !wait.Sleep(ctx, delay) {
			return "", err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// recordOnce makes one attempt to record reply and returns the answer to use
// and the conversation it is in.
func (p *Pipeline) recordOnce(ctx context.Context, j *events.Job, stage events.Stage, held *events.Conversation, rev uint64, reply ai.Reply) (string, *events.Conversation, error) {
	var answer string
	c, rev, err := p.store.ConverseFrom(ctx, j.ConversationID, j.ID, held, rev, func(c *events.Conversation) error {
		if m, ok := j.RecordedAnswer(c, stage); ok {
			answer = m.Content
			return kvstore.ErrNoChange
		}
		now := time.Now().UTC()
		for _, t := range reply.Turns {
			m := events.Message{Role: t.Role, Content: t.Content, Time: now, Stage: stage, Seq: j.Seq}
			if t.Role == ai.RoleAssistant {
				answer = t.Content
				m.Model = reply.Model
				if p.llm.Provider() != ai.ProviderOffline {
					m.Usage = &events.MessageUsage{PromptTokens: int64(reply.Usage.PromptTokens), CompletionTokens: int64(reply.Usage.CompletionTokens)}
				}
			}
			c.Messages = append(c.Messages, m)
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("record %s answer: %w", stage, err)
	}
	if rev != 0 {
		p.convs.put(c.ID, c, rev) // the next stage may read it here without a read
	}
	return answer, c, nil
}

// failed settles a stage whose work failed: an abort or a lost lease discards the
// work (a lost lease leaves the ticket to whoever holds the job now), a shutdown
// hands the ticket back, a write refused for want of storage is left to the
// runner (pause.go) with the job untouched and its retries not counted, a wait
// the LLM provider asked for is waited without counting a retry (rateLimited),
// a transient failure is retried with back-off until the budget is spent, and a
// permanent one waits for the user. (An LLM outage never gets here: package ai
// holds the calls while its circuit breaker is open.)
func (p *Pipeline) failed(ctx context.Context, j *events.Job, owner string, stage events.Stage, cause error) error {
	switch {
	case errors.Is(cause, errLeaseLost), errors.Is(cause, errAborted), ctx.Err() != nil, kvstore.IsStorage(cause):
		return cause
	}
	if rl := (*ai.RateLimitedError)(nil); errors.As(cause, &rl) {
		return p.rateLimited(ctx, j, owner, stage, rl)
	}
	j, err := p.finish(ctx, j.ID, owner, lifecycle.Failed(owner, stage, cause, errors.Is(cause, ai.ErrPermanent), p.cfg.backoff))
	if err != nil {
		return err
	}
	p.log.WarnContext(ctx, "stage failed", "job_id", j.ID, "step", stage, "status", j.Status, "error", cause)
	if j.Status != events.StatusError {
		return nil
	}
	if p.metrics != nil {
		p.metrics.Retries.WithLabelValues(string(stage)).Inc()
	}
	return &RetryError{Delay: p.cfg.backoff(j.RetryCount), Err: cause}
}

// rateLimited hands the job back to its stage's queue after the LLM provider
// asked for a wait (Retry-After, x-ratelimit-reset-*): its ticket is naked
// with that delay, so no worker is held meanwhile, and its retry count is not
// touched. Each such wait is one delivery of the ticket (MaxDeliver bounds
// them).
func (p *Pipeline) rateLimited(ctx context.Context, j *events.Job, owner string, stage events.Stage, rl *ai.RateLimitedError) error {
	j, err := p.finish(ctx, j.ID, owner, lifecycle.RateLimited(owner, stage, rl.Wait))
	if err != nil {
		return err
	}
	p.log.WarnContext(ctx, "rate limited by the LLM provider", "job_id", j.ID, "step", stage, "model", rl.Model,
		"status", rl.Status, "wait", rl.Wait)
	return &RetryError{Delay: rl.Wait, Err: rl}
}

// fallbackNote is what a status event says of a reply a fallback model gave
// (ai.Reply.Fallback), or "".
func fallbackNote(r ai.Reply) string {
	if r.Fallback == "" {
		return ""
	}
	return fmt.Sprintf("answered by fallback model %s after %s", r.Model, r.Fallback)
}

// noted is t with note before its message (lifecycle.Noted), or t without one.
func noted(t lifecycle.Transition, note string) lifecycle.Transition {
	if note == "" {
		return t
	}
	return lifecycle.Noted(t, note)
}
