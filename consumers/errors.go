package consumers

import (
	"errors"
	"fmt"

	"github.com/sheetpipe/sheetpipe/worker"
)

// The kinds of a stage's error are package worker's, which settles them.
var (
	// ErrStale marks a ticket that no longer matches its job; it is acked and dropped.
	ErrStale = worker.ErrStale
	// ErrPermanent marks a message that can never be processed; it is terminated.
	ErrPermanent = worker.ErrPermanent
	// errLeaseLost means the job was taken over or advanced while this
	// worker ran it: its result is discarded and its delivery left unsettled. The
	// server applies an ack by stream sequence, whatever the delivery, so an ack
	// here would remove the ticket from under the worker that holds the job now;
	// after AckWait the ticket comes back and the job's state decides.
	errLeaseLost = worker.ErrLeaseLost
	// errAborted means the user aborted the job while this worker ran it: the
	// work is cancelled, its result discarded and its ticket acked, since no
	// worker may act on an aborted job again.
	errAborted = worker.WithOutcome("aborted", fmt.Errorf("job aborted: %w", ErrStale))
	// errGaveUp means a stage beside the pipeline (meta) stopped trying a ticket
	// after its bounded retries: the ticket is acked and the failure counted; the
	// job's status is not touched.
	errGaveUp = worker.ErrGaveUp
	// errAckTimeout means a publish sent without waiting was not acknowledged
	// within publishAckTimeout.
	errAckTimeout = errors.New("no acknowledgement in time")
)

// RetryError asks the runner to redeliver the message after Delay.
type RetryError = worker.RetryError
