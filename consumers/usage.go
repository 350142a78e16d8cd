package consumers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// tally keeps, for the handling of one stage ticket, the job's conversation as
// its last LLM answer left it (recorded, or found recorded), from which the
// stage's write counts what the answers of the hand-off cost.
type tally struct {
	mu   sync.Mutex
	conv *events.Conversation
}

type tallyKey struct{}

func withTally(ctx context.Context) (context.Context, *tally) {
	t := &tally{}
	return context.WithValue(ctx, tallyKey{}, t), t
}

// noteConversation keeps c as the conversation the stage's answers are in.
func noteConversation(ctx context.Context, c *events.Conversation) {
	if t, ok := ctx.Value(tallyKey{}).(*tally); ok && c != nil {
		t.mu.Lock()
		t.conv = c
		t.mu.Unlock()
	}
}

func (t *tally) conversation() *events.Conversation {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conv
}

// uncounted are the paid answers of conversation c that job j's usage does not
// count yet: those of the hand-offs after j.UsageSeq, up to j.Seq (a
// refinement recorded before its design failed included).
func uncounted(c *events.Conversation, j *events.Job) []events.Message {
	if c == nil {
		return nil
	}
	var out []events.Message
	for _, m := range c.Messages {
		if m.Role == ai.RoleAssistant && m.Usage != nil && m.Seq > j.UsageSeq && m.Seq <= j.Seq {
			out = append(out, m)
		}
	}
	return out
}

// pendingTokens are the tokens of c's answers that j's usage does not count yet.
func pendingTokens(c *events.Conversation, j *events.Job) int64 {
	var n int64
	for _, m := range uncounted(c, j) {
		n += m.Usage.PromptTokens + m.Usage.CompletionTokens
	}
	return n
}

// cost is one paid call of model with usage u, priced at LLM_PRICES.
func (p *Pipeline) cost(model string, u events.MessageUsage) events.Totals {
	return events.Totals{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Calls: 1,
		CostUSD: p.cfg.Prices.Cost(model, u.PromptTokens, u.CompletionTokens)}
}

// charge returns t charged with what the answers of j's hand-off in c cost,
// once they are counted in j's user's daily counters: the counters first, so
// that a crash between the two writes is repaired by the redelivered ticket,
// which counts the same answers again (a no-op for the counters) and then
// writes the job.
func (p *Pipeline) charge(ctx context.Context, j *events.Job, c *events.Conversation, t lifecycle.Transition) (lifecycle.Transition, error) {
	if c == nil { // no answer read or recorded (a failed fix): the next write counts them
		return t, nil
	}
	spent := lifecycle.Spent{Seq: j.Seq}
	byDay := map[time.Time][]kvstore.UsageItem{}
	for _, m := range uncounted(c, j) {
		tot := p.cost(m.Model, *m.Usage)
		spent.Calls = append(spent.Calls, lifecycle.Call{Step: string(m.Stage), Totals: tot})
		day := events.Day(m.Time)
		byDay[day] = append(byDay[day], kvstore.UsageItem{Seq: m.Seq, Totals: tot})
	}
	for day, items := range byDay {
		if err := p.countUsage(ctx, j.UserID, day, j.ID, items); err != nil {
			return t, err
		}
	}
	return lifecycle.Charged(t, spent), nil
}

// countUsage counts items in user's counter of day, trying again (from a fresh
// read) until the count is taken, storage refuses it, or recordAnswerFor or ctx
// ends, as record does with an answer: the answers are paid for, and a stage
// that failed here would leave its job to be recovered as a new hand-off, whose
// answer is paid for again (seen when a cluster lost its meta leader).
func (p *Pipeline) countUsage(ctx context.Context, user string, day time.Time, jobID string, items []kvstore.UsageItem) error {
	ctx, cancel := context.WithTimeout(ctx, recordAnswerFor)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		actx, cancelAttempt := context.WithTimeout(ctx, recordAttemptTimeout)
		err := p.store.CountUsage(actx, user, day, jobID, items)
		cancelAttempt()
		if err == nil || kvstore.IsStorage(err) {
			return err
		}
		p.log.WarnContext(ctx, "count usage: counting again", "job_id", jobID, "error", err)
		if !wait.Sleep(ctx, delay) {
			return err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// chargeMeta returns t charged with the meta stage's replies for the LaTeX of
// hand-off seq, counted in j's user's counter of today first.
func (p *Pipeline) chargeMeta(ctx context.Context, j *events.Job, seq uint64, replies []ai.Reply, t lifecycle.Transition) (lifecycle.Transition, error) {
	if p.llm.Provider() == ai.ProviderOffline {
		return t, nil
	}
	var spent lifecycle.Spent
	var sum events.Totals
	for _, r := range replies {
		tot := p.cost(r.Model, events.MessageUsage{PromptTokens: int64(r.Usage.PromptTokens), CompletionTokens: int64(r.Usage.CompletionTokens)})
		spent.Calls = append(spent.Calls, lifecycle.Call{Step: string(events.StageMeta), Totals: tot})
		sum.Add(tot)
	}
	item := kvstore.UsageItem{Seq: seq, Meta: true, Totals: sum}
	if err := p.countUsage(ctx, j.UserID, time.Now(), j.ID, []kvstore.UsageItem{item}); err != nil {
		return t, err
	}
	return lifecycle.Charged(t, spent), nil
}

// overBudget parks the job whose stage found its token budget reached, with
// what its answers recorded so far cost; nil when err is no budget refusal.
func (p *Pipeline) overBudget(ctx context.Context, j *events.Job, owner string, stage events.Stage, tl *tally, err error) (error, bool) {
	var be *lifecycle.BudgetError
	if !errors.As(err, &be) {
		return nil, false
	}
	t, err := p.charge(ctx, j, tl.conversation(), lifecycle.OverBudget(owner, stage, be))
	if err != nil {
		return err, true
	}
	if _, err := p.finish(ctx, j.ID, owner, t); err != nil {
		return err, true
	}
	p.log.WarnContext(ctx, "token budget reached", "job_id", j.ID, "step", stage, "budget", be.Budget, "used", be.Used)
	return nil, true
}
