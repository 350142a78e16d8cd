package kvstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
)

// JetStream error codes of a write refused for want of storage.
const (
	jsAccountResourcesExceeded = 10002 // the account's storage limit (sheetd's disk guard lowers it)
	jsInsufficientResources    = 10023 // the server's storage limit
	jsStorageResourcesExceeded = 10047 // no room to reserve a stream's MaxBytes
)

// Storage returns err as a *events.StorageError when it is a write refused for want of
// storage (a JetStream error 10002, 10023 or 10047, or "no space left on
// device"), or the *events.StorageError err already wraps; otherwise nil.
func Storage(err error) *events.StorageError {
	if err == nil {
		return nil
	}
	var se *events.StorageError
	if errors.As(err, &se) {
		return se
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jsAccountResourcesExceeded, jsInsufficientResources, jsStorageResourcesExceeded:
			return &events.StorageError{Reason: fmt.Sprintf("%s (JetStream error %d)", api.Description, api.ErrorCode), Err: err}
		}
		if strings.Contains(api.Description, "no space left on device") {
			return &events.StorageError{Reason: api.Description, Err: err}
		}
	}
	if strings.Contains(err.Error(), "no space left on device") {
		return &events.StorageError{Reason: "no space left on device", Err: err}
	}
	return nil
}

// IsStorage reports whether err is a write refused for want of storage.
func IsStorage(err error) bool { return Storage(err) != nil }

// Classify returns err with a *events.StorageError in its chain when it is a storage
// refusal, so that callers can test it with errors.Is(err, events.ErrStorage).
func Classify(err error) error {
	if se := Storage(err); se != nil && !errors.As(err, new(*events.StorageError)) {
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
	last *events.StorageError
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
	return Classify(err)
}
