package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxListText bounds ListQuery.Text.
const MaxListText = 256

// ListCursor is a position in the list order (newest created first, then job id):
// a page with Before starts at the first job after it.
type ListCursor struct {
	CreatedAt time.Time
	JobID     string
}

// String encodes the cursor as ListReply.Next: "<unix nanoseconds>_<job id>".
func (c ListCursor) String() string {
	return strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + "_" + c.JobID
}

// ParseListCursor decodes a Before cursor.
func ParseListCursor(s string) (ListCursor, error) {
	ns, id, ok := strings.Cut(s, "_")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return ListCursor{}, fmt.Errorf("%w: before %q is not a cursor from a list reply's next", ErrInvalid, s)
	}
	if id, err = JobIDOf(id); err != nil {
		return ListCursor{}, fmt.Errorf("%w: before %q is not a cursor from a list reply's next", ErrInvalid, s)
	}
	return ListCursor{CreatedAt: time.Unix(0, n), JobID: id}, nil
}

// validatePage checks the filters and cursor beyond status, user and limit.
func (q *ListQuery) validatePage() error {
	if q.Priority != "" && !q.Priority.Valid() {
		return fmt.Errorf("%w: priority %q is not one of high, normal, low", ErrInvalid, q.Priority)
	}
	if len(q.Text) > MaxListText || !utf8.ValidString(q.Text) {
		return fmt.Errorf("%w: text must be valid UTF-8 of at most %d bytes", ErrInvalid, MaxListText)
	}
	if q.Before != "" {
		if _, err := ParseListCursor(q.Before); err != nil {
			return err
		}
	}
	return nil
}

// Overview answers GET /stats: the pipeline at a glance.
type Overview struct {
	// Statuses counts the jobs in the bucket by status.
	Statuses map[Status]int `json:"statuses"`
	// Queues has one entry per JOBS consumer (stage and priority).
	Queues []QueueLoad `json:"queues"`
	// Running counts the jobs whose status is running, by step and priority.
	Running []StepLoad `json:"running"`
	// Failures are the most recently updated jobs in error or waiting_manual.
	Failures []JobSummary `json:"failures"`
	// Jobs is the number of jobs in the bucket.
	Jobs int       `json:"jobs"`
	Time time.Time `json:"time"`
}

// QueueLoad is one queue's tickets: Waiting not yet delivered, InFlight delivered
// and not yet acknowledged (being worked on, or waiting for a redelivery).
type QueueLoad struct {
	Stage    Stage    `json:"stage"`
	Priority Priority `json:"priority"`
	Consumer string   `json:"consumer"`
	Waiting  uint64   `json:"waiting"`
	InFlight int      `json:"in_flight"`
	Error    string   `json:"error,omitempty"`
}

// StepLoad counts running jobs of one step and priority.
type StepLoad struct {
	Step     Step     `json:"step"`
	Priority Priority `json:"priority"`
	Running  int      `json:"running"`
}
