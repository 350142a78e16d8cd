package client

import (
	"errors"
	"fmt"
)

var (
	// ErrNoConn means New was given a nil connection.
	ErrNoConn = errors.New("client: nil nats connection")
	// ErrInvalidJobID means a job id given to Watch, WatchFrom or PDF is not a
	// UUID, which no job has. (The control requests leave the check to the
	// service, which refuses such an id with a 400 error.)
	ErrInvalidJobID = errors.New("job id is not a UUID")
	// ErrNotProvisioned means the server has no sheetpipe streams or buckets:
	// sheetd has not started on it (or the connection points elsewhere).
	ErrNotProvisioned = errors.New("sheetpipe resources not found on this NATS server (is sheetd running?)")
	// ErrNoPDF means the job has no PDF (yet): it has not completed, or it does not
	// exist.
	ErrNoPDF = errors.New("no PDF (the job has not completed, or does not exist)")
	// ErrNoService means no sheetd serves the control API on this server: a
	// request had no responders.
	ErrNoService = errors.New("no sheetd answers the control API on this server; is sheetd running?")
)

// noServiceError is a control request that had no responders; it matches
// ErrNoService and names the subject nobody answered.
type noServiceError struct {
	subject string
}

func (e *noServiceError) Error() string {
	return fmt.Sprintf("no sheetd answers %s on this server; is sheetd running?", e.subject)
}

func (e *noServiceError) Is(target error) bool { return target == ErrNoService }
