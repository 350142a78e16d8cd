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

// ErrStorage means the NATS server refused a write for want of storage: its disk
// (or its JetStream storage limit) is full. Nothing was written; the same write
// succeeds once space is freed, so it is neither the caller's fault nor a reason
// to count a retry against a job.
var ErrStorage = errors.New("storage full")

// StorageError is a write refused for want of storage. It matches ErrStorage.
type StorageError struct {
	// Reason is what the server said, e.g. "resource limits exceeded for account
	// (JetStream error 10002)".
	Reason string
	Err    error
}

func (e *StorageError) Error() string   { return "storage full: " + e.Reason }
func (e *StorageError) Unwrap() error   { return e.Err }
func (e *StorageError) Is(t error) bool { return t == ErrStorage }

// AsStorage returns the *StorageError in err's chain, or nil.
func AsStorage(err error) *StorageError {
	var se *StorageError
	if errors.As(err, &se) {
		return se
	}
	return nil
}
