package events

import (
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
// error classes it is (400, 404, 409, 500) and Message says why.
type ControlError struct {
	Code    int
	Message string
}

func (e *ControlError) Error() string { return e.Message }

// Is lets errors.Is(err, ErrNotFound) and friends match a decoded ControlError.
func (e *ControlError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrConflict:
		return e.Code == CodeConflict
	case ErrInvalid:
		return e.Code == CodeBadRequest
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
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrConflict):
		return CodeConflict
	}
	return CodeInternal
}

// ErrorReply is the JSON body of a failed control request.
type ErrorReply struct {
	Error string `json:"error"`
}

// SubmitReply answers sheetpipe.submit and POST /jobs.
type SubmitReply struct {
	JobID string `json:"job_id"`
}

// JobRef names a job: the body of get, retry and abort.
type JobRef struct {
	JobID string `json:"job_id"`
}

// LatexEdit is a manual edit: the body of sheetpipe.latex.
type LatexEdit struct {
	JobID string `json:"job_id"`
	Latex string `json:"latex"`
}

// Refinement is the body of sheetpipe.refine.
type Refinement struct {
	JobID       string `json:"job_id"`
	Instruction string `json:"instruction"`
}

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
// anything else (and unknown fields) with ErrInvalid.
func DecodeControl(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body is not the expected JSON object: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body has data after the JSON object", ErrInvalid)
	}
	return nil
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

// Validate checks a manual edit and normalises its job id.
func (e *LatexEdit) Validate() error {
	id, err := JobIDOf(e.JobID)
	if err != nil {
		return err
	}
	e.JobID = id
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
