package kvstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream error codes of a write refused for want of storage.
const (
	jsAccountResourcesExceeded = 10002 // the account's storage limit (sheetd's disk guard lowers it)
	jsInsufficientResources    = 10023 // the server's storage limit
	jsStorageResourcesExceeded = 10047 // no room to reserve a stream's MaxBytes
)

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

// Storage returns err as a *StorageError when it is a write refused for want of
// storage (a JetStream error 10002, 10023 or 10047, or "no space left on
// device"), or the *StorageError err already wraps; otherwise nil.
func Storage(err error) *StorageError {
	if err == nil {
		return nil
	}
	var se *StorageError
	if errors.As(err, &se) {
		return se
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jsAccountResourcesExceeded, jsInsufficientResources, jsStorageResourcesExceeded:
			return &StorageError{Reason: fmt.Sprintf("%s (JetStream error %d)", api.Description, api.ErrorCode), Err: err}
		}
		if strings.Contains(api.Description, "no space left on device") {
			return &StorageError{Reason: api.Description, Err: err}
		}
	}
	if strings.Contains(err.Error(), "no space left on device") {
		return &StorageError{Reason: "no space left on device", Err: err}
	}
	return nil
}

// IsStorage reports whether err is a write refused for want of storage.
func IsStorage(err error) bool { return Storage(err) != nil }

// classify returns err with a *StorageError in its chain when it is a storage
// refusal, so that callers can test it with errors.Is(err, ErrStorage).
func classify(err error) error {
	if se := Storage(err); se != nil && !errors.As(err, new(*StorageError)) {
		return se
	}
	return err
}

// storageWindow is how long a storage refusal keeps StorageErr failing when no
// write succeeds after it.
const storageWindow = 30 * time.Second

// storageHealth remembers the store's last storage refusal, until a write
// succeeds or storageWindow passes.
type storageHealth struct {
	mu   sync.Mutex
	last *StorageError
	at   time.Time
}

// note records the outcome of a write.
func (h *storageHealth) note(err error) {
	se := Storage(err)
	if err != nil && se == nil {
		return // another failure says nothing about storage
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.at = se, time.Now()
}

// StorageErr is the last storage refusal of a write of this store (nil once a
// write succeeded since, or storageWindow after it). It is how a sheetd that
// joins an external NATS server learns that the server's storage is full.
func (s *Store) StorageErr() error {
	h := &s.storage
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil || time.Since(h.at) > storageWindow {
		return nil
	}
	return h.last
}

// wrote records a write's outcome and returns its error classified.
func (s *Store) wrote(err error) error {
	s.storage.note(err)
	return classify(err)
}
