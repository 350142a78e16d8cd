package events

import (
	"crypto/rand"
	"maps"
	"slices"
	"time"
)

// The KV buckets of the contract: key = job id, value = Job JSON; key =
// conversation id, value = Conversation JSON.
const (
	BucketJobs          = "jobs"
	BucketConversations = "conversations"
)

// Job is a job as the jobs bucket stores it and get and list return it. The first block of fields is the
// public contract; the rest is internal bookkeeping of the pipeline.
type Job struct {
	ID             string    `json:"id"`
	UserID         string    `json:"user_id"`
	Status         Status    `json:"status"`
	CurrentStep    Step      `json:"current_step"`
	Prompt         string    `json:"prompt"`
	Mode           string    `json:"mode"`
	Design         string    `json:"design"`
	Latex          string    `json:"latex"`
	PDFURL         string    `json:"pdf_url"`
	ErrorMessage   string    `json:"error_message"`
	ErrorLog       *ErrorLog `json:"error_log,omitempty"`
	ConversationID string    `json:"conversation_id"`
	RetryCount     int       `json:"retry_count"`
	MaxRetries     int       `json:"max_retries"`
	Description    string    `json:"description"`
	Tags           []string  `json:"tags"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`

	// Message is the human-readable text of the last state change, sent in its event.
	Message string `json:"message"`
	// Provider is the LLM provider that wrote design and LaTeX ("offline" when no
	// model was configured).
	Provider string `json:"provider,omitempty"`
	// Stage and Seq name the one ticket that may act on the job now: a ticket whose
	// stage or sequence differs is stale. Seq grows with every hand-off. A job
	// no ticket may act on (finished, parked for a human, waiting for its
	// dependencies) has no Stage.
	Stage Stage  `json:"stage,omitempty"`
	Seq   uint64 `json:"seq"`
	// RecoveredFrom is the first hand-off of the stage's current run that the
	// sweeper handed on again (a worker died or lost NATS before writing its
	// result): an answer the stage recorded since then was made from the same
	// input and serves the current hand-off (RecordedAnswer). Any other change
	// of hand-off clears it.
	RecoveredFrom uint64 `json:"recovered_from,omitempty"`
	// Resume is the stage a retry of a job parked for a human runs again (the
	// one that gave up on it); empty when its step and error say (a compile
	// error: fix or compile) or when it is not parked.
	Resume Stage `json:"resume_stage,omitempty"`
	// Lease is set while a worker runs the job; a lease past its expiry belongs to a
	// worker that died.
	Lease *Lease `json:"lease,omitempty"`
	// ManualEdit marks LaTeX supplied by a user: a failed compile of it goes to
	// waiting_manual rather than to the fix stage.
	ManualEdit bool `json:"manual_edit,omitempty"`
	// Refinement is a user's instruction waiting for the design stage, which first
	// revises the request with it and then designs again.
	Refinement string `json:"refinement,omitempty"`
	// Priority is the request's priority ("high", "normal", "low"); it picks the
	// queue of every ticket of the job.
	Priority Priority `json:"priority,omitempty"`
	// DependsOn are the jobs whose final LaTeX this one builds on.
	DependsOn []string `json:"depends_on,omitempty"`
	// Blocked is set while the job, pending at step design, waits for its
	// dependencies to complete: it has no ticket (Stage is empty) until they do.
	Blocked bool `json:"blocked,omitempty"`
	// WebhookURL receives the job's final status
	WebhookURL string `json:"webhook_url,omitempty"`
	// ActiveRev is the revision of the job's record in the active index (see
	// BucketActive) while it has a stage.
	ActiveRev uint64 `json:"active_rev,omitempty"`
	// BatchID is the batch the job was submitted in, if any.
	BatchID string `json:"batch_id,omitempty"`
	// RevisedPrompt is the request the current design was made from once
	// refinements changed it; Prompt keeps what the user first asked.
	RevisedPrompt string `json:"revised_prompt,omitempty"`
	// LatexSeq is the hand-off at which the current LaTeX was written by the latex
	// stage or a user's edit; a fix keeps it, since it repairs the same worksheet.
	// The meta stage describes the LaTeX of this hand-off.
	LatexSeq uint64 `json:"latex_seq,omitempty"`
	// MetaSeq is the LatexSeq that description and tags were made from, or that
	// the meta stage gave up on (MetaError says why); meta is due while it
	// differs from LatexSeq.
	MetaSeq uint64 `json:"meta_seq,omitempty"`
	// MetaError is why the meta stage gave up on the LaTeX of MetaSeq.
	MetaError string `json:"meta_error,omitempty"`
	// EventRev is the revision a re-emitted status event carries when writes that
	// change no state (the meta stage's) followed the job's last change of state;
	// 0 when none did.
	EventRev uint64 `json:"event_rev,omitempty"`
	// Imported keeps what the old store said of a job imported from it that the
	// job has no field for (sheetctl import); nil for a job sheetpipe created.
	Imported *Imported `json:"imported,omitempty"`
	// ImportedAt is when the job was imported; CreatedAt and UpdatedAt keep the
	// old store's times.
	ImportedAt time.Time `json:"imported_at,omitzero"`
	// Incarnation tells this job apart from an earlier job stored under the same
	// id (deleted by the janitor, then submitted again). It is set when the job is
	// stored as new and is part of the dedupe id of every ticket of the job, so
	// that none repeats a deleted job's inside the JOBS duplicates window. Empty
	// for a job stored before it existed.
	Incarnation string `json:"incarnation,omitempty"`

	// Usage is what the job spent on the LLM (docs/usage.md); nil before its
	// first paid answer.
	Usage *Usage `json:"usage,omitempty"`
	// UsageSeq is the last hand-off whose recorded answers Usage counts.
	UsageSeq uint64 `json:"usage_seq,omitempty"`
	// TokenBudget is how many tokens the job may use since BudgetBase before an
	// LLM call of it is refused (0: no budget).
	TokenBudget int64 `json:"token_budget,omitempty"`
	// BudgetBase is the job's tokens when its budget was last granted (a retry
	// or a refine grants a fresh one).
	BudgetBase int64 `json:"budget_base,omitempty"`
}

// Incarnate gives a job about to be stored as new its own Incarnation.
func (j *Job) Incarnate() {
	if j.Incarnation == "" {
		j.Incarnation = rand.Text()
	}
}

// Imported is the old store's record of an imported job, as far as the job's
// own fields do not hold it.
type Imported struct {
	// Status and Step are the job's state in the old store (the job may have
	// been resumed from it); named old_status and old_step, so that a byte
	// search for the job's own "status" member never finds them.
	Status Status `json:"old_status"`
	Step   Step   `json:"old_step"`
	// PDFURL is the old store's pdf_url; PDF says what became of that PDF
	// ("imported", "recompile", "missing: ..." or "" for none).
	PDFURL string `json:"pdf_url,omitempty"`
	PDF    string `json:"pdf,omitempty"`
	// ConversationID is the old conversation id when the job's differs from it
	// (an id that is no valid key); Conversation notes a conversation the old
	// store lacked.
	ConversationID string `json:"conversation_id,omitempty"`
	Conversation   string `json:"conversation,omitempty"`
	// Extra holds the old job's fields sheetpipe does not know, each as the
	// text of its JSON value; ConversationExtra the old conversation's,
	// MessageExtra its messages' (by index in the conversation). They are
	// strings so that no old value can imitate a member of the job (the byte
	// searches of store.go and watch.go rely on it).
	Extra             map[string]string            `json:"extra,omitempty"`
	ConversationExtra map[string]string            `json:"conversation_extra,omitempty"`
	MessageExtra      map[string]map[string]string `json:"message_extra,omitempty"`
}

// LastChange is when the job last changed: the later of UpdatedAt and
// ImportedAt, so that a job imported with an old UpdatedAt counts as changed
// when it was imported.
func (j *Job) LastChange() time.Time {
	if j.ImportedAt.After(j.UpdatedAt) {
		return j.ImportedAt
	}
	return j.UpdatedAt
}

// UntouchedImport reports whether j was imported and nothing wrote it since:
// every later write stamps UpdatedAt with its own time, after ImportedAt.
func (j *Job) UntouchedImport() bool {
	return j.Imported != nil && !j.ImportedAt.IsZero() && !j.UpdatedAt.After(j.ImportedAt)
}

// StateRevision is the revision whose status event describes the job read at
// rev: rev itself unless writes that change no state followed that event.
func (j *Job) StateRevision(rev uint64) uint64 {
	if j.EventRev != 0 {
		return j.EventRev
	}
	return rev
}

// MetaDue reports whether the job's current LaTeX still waits for its
// description and tags.
func (j *Job) MetaDue() bool { return j.LatexSeq != 0 && j.MetaSeq != j.LatexSeq }

// MetaTicket is the meta stage's ticket for the job's current LaTeX.
func (j *Job) MetaTicket() Ticket {
	return Ticket{JobID: j.ID, Stage: StageMeta, Seq: j.LatexSeq, UserID: j.UserID}
}

// Request is what the design stage designs from: the latest revised request, or
// the prompt.
func (j *Job) Request() string {
	if j.RevisedPrompt != "" {
		return j.RevisedPrompt
	}
	return j.Prompt
}

// Versioned is a job with its revision, as the control API returns it.
type Versioned struct {
	Job
	Revision uint64 `json:"revision"`
}

// ErrorLog is the compile failure kept on the job.
type ErrorLog struct {
	Log     string `json:"log"`
	Snippet string `json:"snippet"`
	Line    int    `json:"line"`
}

// Lease records which worker runs a job and until when it is presumed alive.
type Lease struct {
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Expired reports whether the lease ran out at now.
func (l *Lease) Expired(now time.Time) bool { return l == nil || now.After(l.ExpiresAt) }

// Queue is where the job's current ticket goes.
func (j *Job) Queue() Queue { return TicketQueue(j.Stage, j.Priority) }

// Ticket is the hand-off the job currently expects.
func (j *Job) Ticket() Ticket {
	return Ticket{JobID: j.ID, Stage: j.Stage, Seq: j.Seq, UserID: j.UserID}
}

// Event is the status event for the job's state at revision rev.
func (j *Job) Event(rev uint64) StatusEvent {
	ev := StatusEvent{
		JobID:      j.ID,
		UserID:     j.UserID,
		Status:     j.Status,
		Step:       j.CurrentStep,
		Message:    j.Message,
		RetryCount: j.RetryCount,
		MaxRetries: j.MaxRetries,
		PDFURL:     j.PDFURL,
		Revision:   rev,
		Time:       j.UpdatedAt,
	}
	if j.ErrorLog != nil && (j.Status == StatusWaitingAIFix || j.Status == StatusWaitingManual) {
		ev.Error = &ErrorInfo{Message: j.ErrorMessage, Line: j.ErrorLog.Line, Snippet: j.ErrorLog.Snippet}
	} else if j.ErrorMessage != "" && (j.Status == StatusError || j.Status == StatusWaitingManual) {
		ev.Error = &ErrorInfo{Message: j.ErrorMessage}
	}
	return ev
}

// Conversation is the value of a key in the "conversations" bucket: the whole LLM
// dialogue of a job (design, LaTeX, every fix and refinement).
type Conversation struct {
	ID        string    `json:"id"`
	JobID     string    `json:"job_id"`
	Messages  []Message `json:"messages"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Message is one turn. Stage and Seq tag the turns of one stage run so that a
// redelivered ticket finds the answer it already paid for instead of asking again.
type Message struct {
	Role    string    `json:"role"`
	Content string    `json:"content"`
	Time    time.Time `json:"time"`
	Stage   Stage     `json:"stage,omitempty"`
	Seq     uint64    `json:"seq,omitempty"`
	// Model and Usage are the model that gave an assistant turn and the tokens
	// the provider reported for it (none from the offline provider).
	Model string        `json:"model,omitempty"`
	Usage *MessageUsage `json:"usage,omitempty"`
}

// RecordedAnswer is the answer stage recorded in c for j's current hand-off:
// for Seq, or, for a job the sweeper recovered, for any hand-off of the same
// run since RecoveredFrom (the last one recorded), so that an answer paid for
// before a worker died is not paid for again.
func (j *Job) RecordedAnswer(c *Conversation, stage Stage) (Message, bool) {
	from := j.Seq
	if j.RecoveredFrom != 0 && j.RecoveredFrom < j.Seq {
		from = j.RecoveredFrom
	}
	for i := len(c.Messages) - 1; i >= 0; i-- {
		m := c.Messages[i]
		if m.Stage == stage && m.Seq >= from && m.Seq <= j.Seq && m.Role == "assistant" {
			return m, true
		}
	}
	return Message{}, false
}

// Active reports whether a stage may still act on j: it has a stage's hand-off,
// or waits for its dependencies to get one.
func (j *Job) Active() bool { return j.Stage != "" || j.Blocked }

// Clone returns a deep copy of j: changing one never changes the other.
func (j *Job) Clone() *Job {
	c := *j
	if j.ErrorLog != nil {
		e := *j.ErrorLog
		c.ErrorLog = &e
	}
	if j.Lease != nil {
		l := *j.Lease
		c.Lease = &l
	}
	c.Tags = slices.Clone(j.Tags)
	c.DependsOn = slices.Clone(j.DependsOn)
	c.Usage = j.Usage.Clone()
	if j.Imported != nil {
		imp := *j.Imported
		imp.Extra = maps.Clone(imp.Extra)
		imp.ConversationExtra = maps.Clone(imp.ConversationExtra)
		imp.MessageExtra = maps.Clone(imp.MessageExtra)
		c.Imported = &imp
	}
	return &c
}

// Clone returns a deep copy of c.
func (c *Conversation) Clone() *Conversation {
	d := *c
	d.Messages = slices.Clone(c.Messages)
	return &d
}
