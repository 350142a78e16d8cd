package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Ticket is the internal message on a stage subject. All job state is read from KV;
// Seq identifies the hand-off it was issued for, so a stage can tell a current
// ticket from a stale or duplicate one.
type Ticket struct {
	JobID string `json:"job_id"`
	Stage Stage  `json:"stage"`
	Seq   uint64 `json:"seq"`
	// UserID is the job's user, whose turn the ticket waits for (fairness,
	// docs/fairness.md); tickets published before it have none and count as
	// user "".
	UserID string `json:"user_id,omitempty"`
}

// MsgID is the Nats-Msg-Id that deduplicates re-publishes of the same hand-off.
func (t Ticket) MsgID() string { return fmt.Sprintf("%s:%s:%d", t.JobID, t.Stage, t.Seq) }

// DecodeTicket parses a ticket and checks it names a job, a stage and a sequence.
func DecodeTicket(data []byte) (Ticket, error) {
	var t Ticket
	if err := json.Unmarshal(data, &t); err != nil {
		return t, fmt.Errorf("%w: ticket: %v", ErrMalformed, err)
	}
	if t.JobID == "" || !t.Stage.Runnable() || t.Seq == 0 {
		return t, fmt.Errorf("%w: ticket needs job_id, stage and seq", ErrMalformed)
	}
	return t, nil
}

// ErrorInfo is the compile error shown in a status event.
type ErrorInfo struct {
	Message string `json:"message"`
	Line    int    `json:"line"`
	Snippet string `json:"snippet"`
}

// StatusEvent is published on jobs.status once per job state change, in order per
// job. Revision is the job's KV revision after the change.
type StatusEvent struct {
	JobID      string     `json:"job_id"`
	UserID     string     `json:"user_id"`
	Status     Status     `json:"status"`
	Step       Step       `json:"step"`
	Message    string     `json:"message"`
	RetryCount int        `json:"retry_count"`
	MaxRetries int        `json:"max_retries"`
	Error      *ErrorInfo `json:"error,omitempty"`
	PDFURL     string     `json:"pdf_url,omitempty"`
	Revision   uint64     `json:"revision"`
	Time       time.Time  `json:"time"`
}

// MarshalJSON writes Time as RFC 3339 with nanoseconds, in UTC.
func (e StatusEvent) MarshalJSON() ([]byte, error) {
	type plain StatusEvent
	return json.Marshal(struct {
		plain
		Time string `json:"time"`
	}{plain(e), e.Time.UTC().Format(time.RFC3339Nano)})
}

// Final reports whether the event ends the job's run: a final status, or status
// error at step prompt (an invalid request, which is never retried).
func (e StatusEvent) Final() bool {
	return Finished(e.Status, e.Step)
}

// MsgID deduplicates a re-publish of the same event.
func (e StatusEvent) MsgID() string { return fmt.Sprintf("%s:%d", e.JobID, e.Revision) }

// Rejection is published on jobs.rejected for a message the pipeline cannot turn
// into a job. It is never retried.
type Rejection struct {
	Reason  string `json:"reason"`
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id,omitempty"`
}
