package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Request limits and defaults of the contract.
const (
	MaxPromptBytes    = 16 << 10
	MaxUserIDLen      = 128
	MaxRetriesCap     = 10
	DefaultMaxRetries = 3
	MaxDependencies   = 16
	MaxWebhookURLLen  = 2048
)

// Modes a request may ask for. ModeAuto lets the fix stage repair LaTeX that does
// not compile; ModeManual sends a compile failure straight to waiting_manual.
const (
	ModeAuto   = "auto"
	ModeManual = "manual"
)

// JobRequest is what clients publish on jobs.prompt (and submit through the API).
type JobRequest struct {
	JobID      string `json:"job_id,omitempty"`
	UserID     string `json:"user_id"`
	Prompt     string `json:"prompt"`
	MaxRetries *int   `json:"max_retries,omitempty"`
	Mode       string `json:"mode,omitempty"`
	// Priority is "high", "normal" (the default) or "low".
	Priority Priority `json:"priority,omitempty"`
	// DependsOn names jobs whose final LaTeX this job builds on; it waits until
	// they complete.
	DependsOn []string `json:"depends_on,omitempty"`
	// WebhookURL receives a signed POST of every final status event of the job.
	WebhookURL string `json:"webhook_url,omitempty"`
	// TokenBudget bounds the tokens the job may use (docs/usage.md); 0 takes
	// SHEETPIPE_JOB_TOKEN_BUDGET, which it may not exceed when that is set.
	TokenBudget int64 `json:"token_budget,omitempty"`
}

// DecodeRequest parses a job request. It fails with ErrMalformed when data is not a
// JSON object, and with ErrInvalid when a field is unknown or given twice
// (checkFields: `unknown field "priorty" (did you mean "priority"?)`), has the
// wrong type or its text is not valid UTF-8 ("prompt is not valid UTF-8": encoding/json would have
// replaced each bad byte with U+FFFD) — the request then carries whatever job_id
// and user_id it had, so the failure can be reported on that job; the rules on
// values are checked by Validate.
func DecodeRequest(data []byte) (JobRequest, error) {
	var r JobRequest
	var fields map[string]json.RawMessage
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return r, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw, ok := fields["job_id"]; ok && len(raw) > 0 && raw[0] != '"' && string(raw) != "null" {
		return r, fmt.Errorf("%w: job_id must be a string UUID, not %s", ErrMalformed, Excerpt(string(raw), maxQuotedBytes))
	}
	if err := json.Unmarshal(trimmed, &r); err != nil {
		// r keeps the fields decoded before the bad one; job_id and user_id are
		// kept whatever their order so the failure reaches the right watcher.
		_ = json.Unmarshal(fields["job_id"], &r.JobID)
		_ = json.Unmarshal(fields["user_id"], &r.UserID)
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return r, fmt.Errorf("%w: %s must be a %s, not %s", ErrInvalid, typeErr.Field, jsonKind(typeErr.Type.Kind()), Excerpt(typeErr.Value, maxQuotedBytes))
		}
		return r, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkText(trimmed); err != nil {
		return r, err
	}
	return r, checkFields(trimmed, &r)
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64, reflect.Pointer:
		return "number"
	case reflect.Slice:
		return "list"
	}
	return k.String()
}

// Validate checks the request against the contract and fills defaults
// (max_retries, mode). The job id must be empty or a UUID; it is normalised to
// lower case.
func (r *JobRequest) Validate(defaultMaxRetries int) error {
	if r.JobID != "" {
		id, err := uuid.Parse(r.JobID)
		if err != nil {
			return fmt.Errorf("%w: job_id %s is not a UUID", ErrInvalid, Quoted(r.JobID))
		}
		r.JobID = id.String()
	}
	switch {
	case r.UserID == "":
		return fmt.Errorf("%w: user_id is required", ErrInvalid)
	case !utf8.ValidString(r.UserID):
		return fmt.Errorf("%w: user_id is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(r.UserID) > MaxUserIDLen:
		return fmt.Errorf("%w: user_id is longer than %d characters", ErrInvalid, MaxUserIDLen)
	case userIDFault(r.UserID) != "":
		return fmt.Errorf("%w: user_id contains %s", ErrInvalid, userIDFault(r.UserID))
	case !utf8.ValidString(r.Prompt):
		return fmt.Errorf("%w: prompt is not valid UTF-8", ErrInvalid)
	case strings.TrimSpace(r.Prompt) == "":
		return fmt.Errorf("%w: prompt is required and must not be blank", ErrInvalid)
	case len(r.Prompt) > MaxPromptBytes:
		return fmt.Errorf("%w: prompt is %d bytes, more than the %d allowed", ErrInvalid, len(r.Prompt), MaxPromptBytes)
	}
	if r.MaxRetries == nil {
		d := defaultMaxRetries
		r.MaxRetries = &d
	}
	if *r.MaxRetries < 0 || *r.MaxRetries > MaxRetriesCap {
		return fmt.Errorf("%w: max_retries %d is outside 0..%d", ErrInvalid, *r.MaxRetries, MaxRetriesCap)
	}
	switch r.Mode {
	case "":
		r.Mode = ModeAuto
	case ModeAuto, ModeManual:
	default:
		return fmt.Errorf("%w: mode %s is not %q or %q", ErrInvalid, Quoted(r.Mode), ModeAuto, ModeManual)
	}
	if r.Priority == "" {
		r.Priority = PriorityNormal
	}
	if !r.Priority.Valid() {
		return fmt.Errorf("%w: priority %s is not %q, %q or %q", ErrInvalid, Quoted(string(r.Priority)), PriorityHigh, PriorityNormal, PriorityLow)
	}
	if err := r.validateDependencies(); err != nil {
		return err
	}
	return validateWebhookURL(r.WebhookURL)
}

// validateDependencies checks depends_on: at most MaxDependencies distinct UUIDs,
// not the job itself; they are normalised to lower case.
func (r *JobRequest) validateDependencies() error {
	if len(r.DependsOn) > MaxDependencies {
		return fmt.Errorf("%w: depends_on names %d jobs, more than the %d allowed", ErrInvalid, len(r.DependsOn), MaxDependencies)
	}
	seen := make(map[string]bool, len(r.DependsOn))
	for i, dep := range r.DependsOn {
		id, err := uuid.Parse(dep)
		if err != nil || len(dep) != 36 {
			return fmt.Errorf("%w: depends_on[%d] %s is not a job id (a UUID)", ErrInvalid, i, Quoted(dep))
		}
		r.DependsOn[i] = id.String()
		switch {
		case r.DependsOn[i] == r.JobID:
			return fmt.Errorf("%w: job %s cannot depend on itself", ErrInvalid, r.JobID)
		case seen[r.DependsOn[i]]:
			return fmt.Errorf("%w: depends_on names job %s twice", ErrInvalid, r.DependsOn[i])
		}
		seen[r.DependsOn[i]] = true
	}
	return nil
}

// validateWebhookURL checks the form of a webhook URL: absolute http or https,
// with a host and no credentials. Where it may point is checked by the webhook
// sender, which resolves it.
func validateWebhookURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > MaxWebhookURLLen {
		return fmt.Errorf("%w: webhook_url is longer than %d bytes", ErrInvalid, MaxWebhookURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: webhook_url %q is not a URL", ErrInvalid, raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: webhook_url %q must start with http:// or https://", ErrInvalid, raw)
	case u.Hostname() == "":
		return fmt.Errorf("%w: webhook_url %q has no host", ErrInvalid, raw)
	case u.User != nil:
		return fmt.Errorf("%w: webhook_url must not carry credentials", ErrInvalid)
	}
	return nil
}
