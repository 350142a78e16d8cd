package kvstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
)

// BucketActive indexes the jobs a stage may still act on: key = job id, an empty
// value, written before a job gets a stage (when it is created, and when a user
// action reopens it) and removed once it has none (it completed, was aborted or
// waits for a human). The sweeper looks for stuck jobs among these, so a pass
// costs what the jobs in flight cost, not what the whole bucket (every job of
// the retention period) does.
//
// A record is removed by deleting its one stream message, whose sequence is the
// record's revision and is kept on the job (ActiveRev): a record written again
// since (a reopen) has another sequence and stays, and no delete marker is left
// to pile up.
const BucketActive = "active"

// activate indexes j, which becomes active in the write about to be made; the
// record is written first so the sweeper never misses an active job. The
// record's value is the job's user_id (what a recount of the queue limits
// needs).
func (s *Store) activate(ctx context.Context, j *events.Job) error {
	rev, err := s.active.Put(ctx, j.ID, []byte(j.UserID))
	if err := s.wrote(err); err != nil {
		return fmt.Errorf("index active job %s: %w", j.ID, err)
	}
	j.ActiveRev = rev
	return nil
}

// Deactivate removes job id's record from the active index if it is still the
// one written at rev. Removing one that is gone is no error.
func (s *Store) Deactivate(ctx context.Context, id string, rev uint64) error {
	err := s.activeStream.DeleteMsg(ctx, rev)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return fmt.Errorf("unindex job %s: %w", id, err)
	}
	return nil
}

// deactivateLater removes the record of a job that just lost its stage, in the
// background: the writer has its answer already, and a record left behind by a
// failure here is removed by the sweeper.
func (s *Store) deactivateLater(id string, rev uint64) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Deactivate(ctx, id, rev)
	}()
}

// ActiveRecord is one entry of the active index.
type ActiveRecord struct {
	ID      string
	Rev     uint64
	Written time.Time
	// UserID is the job's user_id, empty in a record written without it (by
	// Activate, or before records had it).
	UserID string
}

// scanRequestTimeout bounds each request of a scan.
const scanRequestTimeout = 5 * time.Second

// EachActive passes every record of the active index to fn, in no particular
// order. An error from fn ends the pass and is returned.
//
// It lists the index's subjects from the stream's state and reads each record,
// rather than watching the bucket: a watcher that counted a record removed
// before it was delivered would wait for ever for the end of the listing.
//
// Each request has its own deadline (scanRequestTimeout), whatever the scan's:
// a stream with no leader never answers.
func (s *Store) EachActive(ctx context.Context, fn func(ActiveRecord) error) error {
	prefix := "$KV." + BucketActive + "."
	rctx, cancel := context.WithTimeout(ctx, scanRequestTimeout)
	info, err := s.activeStream.Info(rctx, jetstream.WithSubjectFilter(prefix+">"))
	cancel()
	if err != nil {
		return fmt.Errorf("scan bucket %s: %w", BucketActive, err)
	}
	for subject := range info.State.Subjects {
		id := strings.TrimPrefix(subject, prefix)
		rctx, cancel := context.WithTimeout(ctx, scanRequestTimeout)
		e, err := s.active.Get(rctx, id)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // removed since the listing
		case err != nil:
			return fmt.Errorf("scan bucket %s: %w", BucketActive, err)
		}
		if err := fn(ActiveRecord{ID: id, Rev: e.Revision(), Written: e.Created(), UserID: string(e.Value())}); err != nil {
			return err
		}
	}
	return nil
}

// Activate indexes job id as active (a job found without a record, as a bucket
// written before the index existed has them) and returns the record's revision.
func (s *Store) Activate(ctx context.Context, id string) (uint64, error) {
	rev, err := s.active.Put(ctx, id, nil)
	if err := s.wrote(err); err != nil {
		return 0, fmt.Errorf("index active job %s: %w", id, err)
	}
	return rev, nil
}
