package client

import "errors"

var (
	// ErrNoConn means New was given a nil connection.
	ErrNoConn = errors.New("client: nil nats connection")
	// ErrInvalidJobID means a job id is not a UUID. The service would reject such
	// a request without creating a job, so the client refuses it up front.
	ErrInvalidJobID = errors.New("job id is not a UUID")
	// ErrNotProvisioned means the server has no sheetpipe streams or buckets:
	// sheetd has not started on it (or the connection points elsewhere).
	ErrNotProvisioned = errors.New("sheetpipe resources not found on this NATS server (is sheetd running?)")
	// ErrNoPDF means the job has no PDF (yet): it has not completed, or it does not
	// exist.
	ErrNoPDF = errors.New("no PDF (the job has not completed, or does not exist)")
)
