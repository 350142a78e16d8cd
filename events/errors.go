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
