package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The NATS micro service of the control API: service ServiceName, one endpoint per
// operation on subject "sheetpipe.<operation>".
const (
	ServiceName    = "sheetpipe"
	ServiceVersion = "1.0.0"

	OpSubmit = "submit"
	OpGet    = "get"
	OpLatex  = "latex"
	OpRetry  = "retry"
	OpRefine = "refine"
	OpAbort  = "abort"
	OpList   = "list"
)

// ControlSubject is the request subject of operation op ("sheetpipe.get").
func ControlSubject(op string) string { return ServiceName + "." + op }

// Control API limits.
const (
	// MaxLatexBytes bounds LaTeX supplied by a manual edit.
	MaxLatexBytes = 512 << 10
	// MaxInstructionBytes bounds a refinement instruction.
	MaxInstructionBytes = MaxPromptBytes
	// DefaultListLimit and MaxListLimit bound the jobs one list returns.
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// Status codes of control errors, as the micro error header and the HTTP status.
const (
	CodeBadRequest = 400
	CodeNotFound   = 404
	CodeConflict   = 409
	CodeInternal   = 500
)

// ControlError is a failed control request: the code says which of the contract's
// error classes it is (400, 404, 409, 500) and Message says why. Revision is the
// job's current revision when the request was refused as stale (409), else 0.
type ControlError struct {
	Code     int
	Message  string
	Revision uint64
}

func (e *ControlError) Error() string { return e.Message }

// Is lets errors.Is(err, ErrNotFound) and friends match a decoded ControlError.
func (e *ControlError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrConflict:
		return e.Code == CodeConflict
	case ErrStale:
		return e.Code == CodeConflict && e.Revision != 0
	case ErrInvalid:
		return e.Code == CodeBadRequest
	case ErrQueueFull:
		return e.Code == CodeTooManyRequests
	}
	return false
}

// CodeOf classifies err for a reply: ErrInvalid and ErrMalformed 400, ErrNotFound
// 404, ErrConflict 409, anything else 500.
func CodeOf(err error) int {
	var ce *ControlError
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrMalformed):
		return CodeBadRequest
	case errors.Is(err, ErrQueueFull):
		return CodeTooManyRequests
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrConflict):
		return CodeConflict
	}
	return CodeInternal
}

// StaleError refuses a change based on revision IfRevision of a job that is at
// Revision now: it matches ErrStale and ErrConflict (409), and nothing was changed.
type StaleError struct {
	JobID      string
	IfRevision uint64
	Revision   uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s: job %s is at revision %d, not %d (if_revision); read it again and base the change on that",
		ErrStale, e.JobID, e.Revision, e.IfRevision)
}

// Is lets errors.Is(err, ErrStale) and errors.Is(err, ErrConflict) match.
func (e *StaleError) Is(target error) bool { return target == ErrStale || target == ErrConflict }

// RevisionOf is the job's current revision that a stale-change error carries
// (a *StaleError, or a decoded *ControlError), else 0.
func RevisionOf(err error) uint64 {
	var se *StaleError
	var ce *ControlError
	switch {
	case errors.As(err, &se):
		return se.Revision
	case errors.As(err, &ce):
		return ce.Revision
	}
	return 0
}

// ErrorReply is the JSON body of a failed control request. Revision is set on a
// 409 for a stale if_revision: the job's current revision.
type ErrorReply struct {
	Error    string `json:"error"`
	Revision uint64 `json:"revision,omitempty"`
}

// SubmitReply answers sheetpipe.submit and POST /jobs.
type SubmitReply struct {
	JobID string `json:"job_id"`
}

// JobRef names a job: the body of get.
type JobRef struct {
	JobID string `json:"job_id"`
}

// The changes below (edit, retry, refine, abort) take IfRevision, the revision of
// the job the caller based the change on: when given, the change is written only
// if the job is still at that revision (the KV compare-and-swap expects it), and
// is refused with a *StaleError otherwise. Nil changes the job whatever its
// revision. Revisions start at 1, so 0 is refused as invalid.

// JobChange is the body of sheetpipe.retry and sheetpipe.abort.
type JobChange struct {
	JobID      string  `json:"job_id"`
	IfRevision *uint64 `json:"if_revision,omitempty"`
}

// LatexEdit is a manual edit: the body of sheetpipe.latex.
type LatexEdit struct {
	JobID      string  `json:"job_id"`
	Latex      string  `json:"latex"`
	IfRevision *uint64 `json:"if_revision,omitempty"`
}

// Refinement is the body of sheetpipe.refine.
type Refinement struct {
	JobID       string  `json:"job_id"`
	Instruction string  `json:"instruction"`
	IfRevision  *uint64 `json:"if_revision,omitempty"`
}

// Revision returns a pointer to rev, for the IfRevision fields.
func Revision(rev uint64) *uint64 { return &rev }

// ListQuery is the body of sheetpipe.list; every field is optional. Priority,
// BatchID, Text (a case-insensitive part of the prompt) and Before (the Next
// cursor of the previous page) are described in listpage.go.
type ListQuery struct {
	Status   Status   `json:"status,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Limit    int      `json:"limit,omitempty"`
	Priority Priority `json:"priority,omitempty"`
	BatchID  string   `json:"batch_id,omitempty"`
	Text     string   `json:"text,omitempty"`
	Before   string   `json:"before,omitempty"`
}

// JobSummary is one job in a list reply: the job without its documents.
type JobSummary struct {
	JobID       string    `json:"job_id"`
	UserID      string    `json:"user_id"`
	Status      Status    `json:"status"`
	Step        Step      `json:"step"`
	Message     string    `json:"message"`
	Prompt      string    `json:"prompt"`
	RetryCount  int       `json:"retry_count"`
	MaxRetries  int       `json:"max_retries"`
	PDFURL      string    `json:"pdf_url,omitempty"`
	Revision    uint64    `json:"revision"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Description string    `json:"description,omitempty"`
	Priority    Priority  `json:"priority,omitempty"`
	BatchID     string    `json:"batch_id,omitempty"`
}

// ListReply answers sheetpipe.list and GET /jobs, newest job first. Truncated says
// that more jobs matched than the limit.
type ListReply struct {
	Jobs      []JobSummary `json:"jobs"`
	Truncated bool         `json:"truncated"`
	// Next is the Before cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
	// Total is how many jobs match the query's filters, on every page.
	Total int `json:"total"`
}

// DecodeControl parses the JSON object body of a control request into v, refusing
// anything else (and unknown fields or fields given twice, see checkFields) with
// ErrInvalid, as well as text that is not valid UTF-8, which encoding/json would
// replace with U+FFFD ("instruction is not valid UTF-8").
func DecodeControl(data []byte, v any) error {
	if err := checkFields(data, v); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); errors.Is(err, ErrInvalid) {
		return err // a field's own refusal (ListQuery's limit)
	} else if err != nil {
		return fmt.Errorf("%w: body is not the expected JSON object: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body has data after the JSON object", ErrInvalid)
	}
	return checkText(data)
}

// JobIDOf checks that id is a job id (a UUID in its 36-character form, any case)
// and returns it in lower case.
func JobIDOf(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: job_id is required", ErrInvalid)
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", fmt.Errorf("%w: job_id %q is not a UUID like 0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", ErrInvalid, id)
	}
	return u.String(), nil
}

// checkIfRevision refuses an if_revision of 0, which no job has.
func checkIfRevision(rev *uint64) error {
	if rev != nil && *rev == 0 {
		return fmt.Errorf("%w: if_revision 0 is not a revision (they start at 1); leave it out to change the job whatever its revision", ErrInvalid)
	}
	return nil
}

// Validate checks a retry or abort and normalises its job id.
func (c *JobChange) Validate() error {
	id, err := JobIDOf(c.JobID)
	if err != nil {
		return err
	}
	c.JobID = id
	return checkIfRevision(c.IfRevision)
}

// Validate checks a manual edit and normalises its job id.
func (e *LatexEdit) Validate() error {
	id, err := JobIDOf(e.JobID)
	if err != nil {
		return err
	}
	e.JobID = id
	if err := checkIfRevision(e.IfRevision); err != nil {
		return err
	}
	switch {
	case !utf8.ValidString(e.Latex):
		return fmt.Errorf("%w: latex is not valid UTF-8", ErrInvalid)
	case strings.TrimSpace(e.Latex) == "":
		return fmt.Errorf("%w: latex is required and must not be blank", ErrInvalid)
	case len(e.Latex) > MaxLatexBytes:
		return fmt.Errorf("%w: latex is %d bytes, more than the %d allowed", ErrInvalid, len(e.Latex), MaxLatexBytes)
	}
	return nil
}

// Validate checks a refinement and normalises its job id.
func (r *Refinement) Validate() error {
	id, err := JobIDOf(r.JobID)
	if err != nil {
		return err
	}
	r.JobID = id
	if err := checkIfRevision(r.IfRevision); err != nil {
		return err
	}
	switch {
	case !utf8.ValidString(r.Instruction):
		return fmt.Errorf("%w: instruction is not valid UTF-8", ErrInvalid)
	case strings.TrimSpace(r.Instruction) == "":
		return fmt.Errorf("%w: instruction is required and must not be blank", ErrInvalid)
	case len(r.Instruction) > MaxInstructionBytes:
		return fmt.Errorf("%w: instruction is %d bytes, more than the %d allowed", ErrInvalid, len(r.Instruction), MaxInstructionBytes)
	}
	return nil
}

// UnmarshalJSON decodes a list query, refusing an explicit "limit": 0, which
// the zero Limit (absent: the default) could not tell apart.
func (q *ListQuery) UnmarshalJSON(data []byte) error {
	type fields ListQuery
	var v struct {
		fields
		Limit *int `json:"limit"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if v.Limit != nil && *v.Limit == 0 {
		return fmt.Errorf("%w: limit 0 is outside 1..%d", ErrInvalid, MaxListLimit)
	}
	*q = ListQuery(v.fields)
	if v.Limit != nil {
		q.Limit = *v.Limit
	}
	return nil
}

// Validate checks a list query and fills the default limit.
func (q *ListQuery) Validate() error {
	switch q.Status {
	case "", StatusPending, StatusRunning, StatusError, StatusWaitingManual,
		StatusWaitingAIFix, StatusCompleted, StatusAborted:
	default:
		return fmt.Errorf("%w: status %q is not one of pending, running, error, waiting_manual, waiting_ai_fix, completed, aborted", ErrInvalid, q.Status)
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultListLimit
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, q.Limit, MaxListLimit)
	}
	return q.validatePage()
}
