package worker

import (
	"errors"
	"fmt"
	"time"
)

// The kinds of a Handler's error, each settled its own way (Runner.settle). A
// storage refusal (kvstore.IsStorage, events.ErrStorage) is a kind too: naked
// with a delay while fetching pauses (pause.go).
var (
	// ErrStale marks a message that no longer applies (a ticket that no longer
	// matches its job); it is acked and dropped.
	ErrStale = errors.New("stale message")
	// ErrPermanent marks a message that can never be processed; it is terminated.
	ErrPermanent = errors.New("permanent failure")
	// ErrGaveUp means the handler stopped trying a message after its bounded
	// retries: the message is acked and the failure counted (outcome "failed").
	ErrGaveUp = errors.New("gave up")
	// ErrLeaseLost means the work was taken over or moved on while this worker ran
	// it: its result is discarded and its delivery left unsettled. The server
	// applies an ack by stream sequence, whatever the delivery, so an ack here
	// would remove the message from under the worker that holds the work now;
	// after AckWait the message comes back and the work's state decides.
	ErrLeaseLost = errors.New("lease lost")
)

// RetryError asks the runner to redeliver the message after Delay.
type RetryError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %s: %v", e.Delay, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// WithOutcome returns err (settled by err's kind) under another outcome name, in
// what Config.Done records: a kind the handler tells apart.
func WithOutcome(outcome string, err error) error { return &namedError{outcome: outcome, err: err} }

type namedError struct {
	outcome string
	err     error
}

func (e *namedError) Error() string { return e.err.Error() }
func (e *namedError) Unwrap() error { return e.err }

// Logged returns err (settled by err's kind) marked as logged by its handler:
// the runner writes no line of its own about it.
func Logged(err error) error { return &loggedError{err: err} }

type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

// Backoff is the delay before retry number n (1-based): base, doubled with each
// retry, at most maxDelay.
func Backoff(base, maxDelay time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}
