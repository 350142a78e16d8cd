package events

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// BucketUsage is the KV bucket of each user's LLM usage per day: key
// "<user>.<YYYY-MM-DD>" (the user id base64url-encoded, the day in UTC), value
// a UsageDay. It lets a user's totals over a period be read without scanning
// every job.
const BucketUsage = "usage"

// OpUsage is the control operation that answers a user's totals over a period.
const OpUsage = "usage"

// MessageUsage is the token count the provider reported for one answer.
type MessageUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Totals is what a job, a step or a user spent on the LLM: tokens, the paid
// calls that used them and their cost at LLM_PRICES (0 for a model without a
// price).
type Totals struct {
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Calls            int64   `json:"calls"`
	CostUSD          float64 `json:"cost_usd"`
}

// Tokens is prompt plus completion tokens.
func (t Totals) Tokens() int64 { return t.PromptTokens + t.CompletionTokens }

// Add adds u to t.
func (t *Totals) Add(u Totals) {
	t.PromptTokens += u.PromptTokens
	t.CompletionTokens += u.CompletionTokens
	t.Calls += u.Calls
	t.CostUSD += u.CostUSD
}

// Usage is a job's LLM usage: its totals and, by step (design, latex, fix,
// refine, meta), each step's.
type Usage struct {
	Totals
	Steps map[string]Totals `json:"steps,omitempty"`
}

// Add counts one paid call of step.
func (u *Usage) Add(step string, t Totals) {
	u.Totals.Add(t)
	if u.Steps == nil {
		u.Steps = map[string]Totals{}
	}
	s := u.Steps[step]
	s.Add(t)
	u.Steps[step] = s
}

// Clone returns a deep copy of u (nil for nil).
func (u *Usage) Clone() *Usage {
	if u == nil {
		return nil
	}
	c := *u
	if u.Steps != nil {
		c.Steps = make(map[string]Totals, len(u.Steps))
		for k, v := range u.Steps {
			c.Steps[k] = v
		}
	}
	return &c
}

// TokensUsed is the job's recorded tokens since its budget was granted (at
// submit, or by the last retry or refine).
func (j *Job) TokensUsed() int64 {
	var used int64
	if j.Usage != nil {
		used = j.Usage.Tokens()
	}
	return max(used-j.BudgetBase, 0)
}

// UsageDay is the value of one key of BucketUsage: a user's totals of one day
// and, per job, the marks of what is counted already, so that counting the
// same answers again (a ticket redelivered after a crash) changes nothing.
type UsageDay struct {
	Totals
	// Jobs holds, by job id, the last hand-off (Seq) whose recorded answers
	// and the last LaTeX (MetaSeq) whose description are counted in this day.
	Jobs map[string]UsageMark `json:"jobs,omitempty"`
}

// UsageMark is what UsageDay counted of one job.
type UsageMark struct {
	Seq     uint64 `json:"seq,omitempty"`
	MetaSeq uint64 `json:"meta_seq,omitempty"`
}

// UsageQuery asks for a user's totals from day Since to day Until, both
// included (UTC days; YYYY-MM-DD or RFC 3339, whose UTC date counts).
type UsageQuery struct {
	UserID string `json:"user_id"`
	Since  string `json:"since,omitempty"`
	Until  string `json:"until,omitempty"`
}

// UsageReply is a user's totals over the days Since..Until (YYYY-MM-DD).
type UsageReply struct {
	UserID string `json:"user_id"`
	Since  string `json:"since"`
	Until  string `json:"until"`
	Totals
}

// Usage period limits: a query without until ends today (UTC), one without
// since starts DefaultUsageDays-1 days before its until; a period spans at
// most MaxUsageDays days.
const (
	DefaultUsageDays = 30
	MaxUsageDays     = 366
	// DayLayout is the form of a day in usage keys and replies.
	DayLayout = "2006-01-02"
)

// Period checks the query and returns its first and last day (UTC midnight);
// now fills the default until.
func (q *UsageQuery) Period(now time.Time) (since, until time.Time, err error) {
	switch {
	case q.UserID == "":
		return since, until, fmt.Errorf("%w: user_id is required", ErrInvalid)
	case !utf8.ValidString(q.UserID) || utf8.RuneCountInString(q.UserID) > MaxUserIDLen:
		return since, until, fmt.Errorf("%w: user_id is not valid UTF-8 of at most %d characters", ErrInvalid, MaxUserIDLen)
	}
	until = Day(now)
	if q.Until != "" {
		if until, err = parseDay("until", q.Until); err != nil {
			return since, until, err
		}
	}
	since = until.AddDate(0, 0, -(DefaultUsageDays - 1))
	if q.Since != "" {
		if since, err = parseDay("since", q.Since); err != nil {
			return since, until, err
		}
	}
	switch {
	case since.After(until):
		return since, until, fmt.Errorf("%w: since %s is after until %s", ErrInvalid, since.Format(DayLayout), until.Format(DayLayout))
	case until.Sub(since) >= MaxUsageDays*24*time.Hour:
		return since, until, fmt.Errorf("%w: the period %s..%s is longer than %d days", ErrInvalid,
			since.Format(DayLayout), until.Format(DayLayout), MaxUsageDays)
	}
	return since, until, nil
}

// Day is the UTC day of t, at midnight.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func parseDay(field, s string) (time.Time, error) {
	if t, err := time.Parse(DayLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return Day(t), nil
	}
	return time.Time{}, fmt.Errorf("%w: %s %s is not a date (YYYY-MM-DD) or an RFC 3339 time", ErrInvalid, field, Quoted(s))
}

// ValidateTokenBudget checks the request's token_budget against limit, the
// process's SHEETPIPE_JOB_TOKEN_BUDGET (0: none) and fills the default: a
// request without one gets limit.
func (r *JobRequest) ValidateTokenBudget(limit int64) error {
	switch {
	case r.TokenBudget < 0:
		return fmt.Errorf("%w: token_budget %d must not be negative", ErrInvalid, r.TokenBudget)
	case limit > 0 && r.TokenBudget > limit:
		return fmt.Errorf("%w: token_budget %d is more than SHEETPIPE_JOB_TOKEN_BUDGET %d allows", ErrInvalid, r.TokenBudget, limit)
	case r.TokenBudget == 0:
		r.TokenBudget = limit
	}
	return nil
}
