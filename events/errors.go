package events

import "errors"

var (
	// ErrMalformed marks a message that is not a JSON object of the expected shape.
	// Such a message is never retried.
	ErrMalformed = errors.New("malformed message")
	// ErrInvalid marks a well-formed request that breaks a rule of the contract
	// (missing user_id, blank prompt, out-of-range max_retries...).
	ErrInvalid = errors.New("invalid request")
)

// Errors of the control API.
var (
	// ErrNotFound marks a request for a job id that does not exist.
	ErrNotFound = errors.New("unknown job")
	// ErrConflict marks a request the job's current state does not allow.
	ErrConflict = errors.New("not allowed in this state")
	// ErrStale marks a change based on a revision of the job that is no longer
	// its current one (a *StaleError); it is also an ErrConflict.
	ErrStale = errors.New("job changed since it was read")
)
