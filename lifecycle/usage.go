package lifecycle

import (
	"fmt"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// Spent is what the LLM answers a transition records cost: Calls, each a paid
// call of a step, and Seq, the hand-off up to which the answers recorded in
// the job's conversation are counted (0 for the meta stage's answers, which
// the conversation does not keep).
type Spent struct {
	Seq   uint64
	Calls []Call
}

// Call is one paid LLM call of Step and what it used.
type Call struct {
	Step   string
	Totals events.Totals
}

// Charged is t that also counts spent in the job's usage, in the same write:
// the answers of a hand-off count once, however often the ticket that
// recorded them is delivered (a job whose UsageSeq reached spent.Seq counted
// them already).
func Charged(t Transition, spent Spent) Transition {
	return Transition{t.spec, func(j *events.Job, now time.Time) error {
		if err := t.change(j, now); err != nil {
			return err
		}
		spent.charge(j)
		return nil
	}}
}

func (s Spent) charge(j *events.Job) {
	if s.Seq != 0 {
		if j.UsageSeq >= s.Seq {
			return
		}
		j.UsageSeq = s.Seq
	}
	if len(s.Calls) == 0 {
		return
	}
	if j.Usage == nil {
		j.Usage = &events.Usage{}
	}
	for _, c := range s.Calls {
		j.Usage.Add(c.Step, c.Totals)
	}
}

// BudgetError is an LLM call of a job refused because the job's recorded
// tokens since its budget was granted reached the budget.
type BudgetError struct {
	Budget, Used int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("token budget reached: %d tokens used of a budget of %d", e.Used, e.Budget)
}

// CheckBudget is a *BudgetError when job j, having used pending tokens
// beyond its recorded usage (answers recorded in its conversation and not yet
// counted), may make no further LLM call; nil when it may or has no budget.
func CheckBudget(j *events.Job, pending int64) error {
	used := j.TokensUsed() + pending
	if j.TokenBudget > 0 && used >= j.TokenBudget {
		return &BudgetError{Budget: j.TokenBudget, Used: used}
	}
	return nil
}

// OverBudget parks the job that stage did not ask the LLM for (e, its
// budget reached), to be retried at stage with a fresh budget.
func OverBudget(owner string, stage events.Stage, e *BudgetError) Transition {
	return held(specPark, owner, func(j *events.Job) {
		j.ErrorMessage = fmt.Sprintf("%s: %v; retry to grant a fresh budget", stage, e)
		park(j, stage, "Token budget reached; retry or refine to continue")
	})
}

// grantBudget gives j a fresh token budget: what it used so far no longer
// counts against it.
func grantBudget(j *events.Job) {
	j.BudgetBase = 0
	if j.Usage != nil {
		j.BudgetBase = j.Usage.Tokens()
	}
}
