package events

import (
	"errors"
	"fmt"
)

// ErrQueueFull refuses a submission that would take the unfinished jobs over
// SHEETPIPE_MAX_QUEUED or one user's over SHEETPIPE_MAX_QUEUED_PER_USER. Nothing
// of it was stored; the same submission is accepted once enough jobs finish.
var ErrQueueFull = errors.New("queue full")

// CodeTooManyRequests is the status code of a submission refused as
// ErrQueueFull (HTTP 429, micro error code 429).
const CodeTooManyRequests = 429

// Limits that refuse a submission (QueueFullError.Limit).
const (
	LimitQueued        = "max_queued"          // SHEETPIPE_MAX_QUEUED
	LimitQueuedPerUser = "max_queued_per_user" // SHEETPIPE_MAX_QUEUED_PER_USER
)

// QueueFullError is a submission of Adding jobs refused because Queued
// unfinished jobs (the user's for LimitQueuedPerUser) plus Adding would exceed
// Max. It matches ErrQueueFull.
type QueueFullError struct {
	Limit  string // LimitQueued or LimitQueuedPerUser
	UserID string // the user, for LimitQueuedPerUser
	Queued int64
	Adding int
	Max    int64
	// RetryAfter is the suggested wait in seconds (the HTTP Retry-After).
	RetryAfter int
}

func (e *QueueFullError) Error() string {
	if e.Limit == LimitQueuedPerUser {
		return fmt.Sprintf("%s: user %s has %d unfinished jobs and the limit per user is %d "+
			"(SHEETPIPE_MAX_QUEUED_PER_USER); %d more would exceed it. Nothing was queued: "+
			"submit again once some of this user's jobs have finished (retry after %ds)",
			ErrQueueFull, Quoted(e.UserID), e.Queued, e.Max, e.Adding, e.RetryAfter)
	}
	return fmt.Sprintf("%s: %d unfinished jobs and the limit is %d (SHEETPIPE_MAX_QUEUED); "+
		"%d more would exceed it. Nothing was queued: submit again once some jobs have finished (retry after %ds)",
		ErrQueueFull, e.Queued, e.Max, e.Adding, e.RetryAfter)
}

func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

// AsQueueFull returns the *QueueFullError in err's chain, or nil.
func AsQueueFull(err error) *QueueFullError {
	var qe *QueueFullError
	if errors.As(err, &qe) {
		return qe
	}
	return nil
}

// OpQueue reads the queue depth: sheetpipe.queue, GET /queue.
const OpQueue = "queue"

// QueueQuery is the body of sheetpipe.queue; UserID (optional) asks for that
// user's depth too.
type QueueQuery struct {
	UserID string `json:"user_id,omitempty"`
}

// UserQueue is one user's unfinished jobs.
type UserQueue struct {
	UserID string `json:"user_id"`
	Queued int64  `json:"queued"`
}

// QueueReply answers sheetpipe.queue: the unfinished jobs in total and their
// limit, the asked user's (User, with MaxPerUser), and the users with the most
// unfinished jobs as of the last count of this sheetd (Top, at TopAsOf; empty
// until the first count).
type QueueReply struct {
	Queued     int64       `json:"queued"`
	Max        int64       `json:"max_queued"`
	MaxPerUser int64       `json:"max_queued_per_user"`
	User       *UserQueue  `json:"user,omitempty"`
	Top        []UserQueue `json:"top"`
	TopAsOf    string      `json:"top_as_of,omitempty"`
}
