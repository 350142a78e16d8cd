package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
)

// The writes of an import from the old store (sheetctl import). Unlike Create and
// Update they keep the times they are given: an imported job keeps the old
// store's created_at and updated_at.

// CreateImported stores job j, imported, as it is (timestamps included); it fails
// with ErrExists when the id is taken. An active job is indexed first, as by
// Create.
func (s *Store) CreateImported(ctx context.Context, j *events.Job) (uint64, error) {
	if j.Active() {
		if err := s.activate(ctx, j); err != nil {
			return 0, err
		}
	}
	j.Incarnate()
	return create(ctx, s, s.jobs, j.ID, j)
}

// ReplaceImported writes j over the job stored at revision rev (an untouched
// import being imported again), keeping j's times. ErrConflict when the job
// changed since rev.
func (s *Store) ReplaceImported(ctx context.Context, j *events.Job, old *events.Job, rev uint64) (uint64, error) {
	if j.Active() {
		if err := s.activate(ctx, j); err != nil {
			return 0, err
		}
	}
	j.Incarnate()
	data, err := json.Marshal(j)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", j.ID, err)
	}
	newRev, err := s.jobs.Update(ctx, j.ID, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("replace job %s: %w", j.ID, ErrConflict)
	}
	if err := s.wrote(err); err != nil {
		return 0, fmt.Errorf("replace job %s: %w", j.ID, err)
	}
	if old.Active() && old.ActiveRev != 0 && old.ActiveRev != j.ActiveRev {
		s.deactivateLater(old.ID, old.ActiveRev)
	}
	return newRev, nil
}

// PutImportedConversation stores conversation c as it is. With rev 0 it creates
// it (ErrExists when the id is taken), otherwise it replaces the one stored at
// rev (ErrConflict when it changed since).
func (s *Store) PutImportedConversation(ctx context.Context, c *events.Conversation, rev uint64) (uint64, error) {
	if rev == 0 {
		return create(ctx, s, s.convs, c.ID, c)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", c.ID, err)
	}
	newRev, err := s.convs.Update(ctx, c.ID, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("replace conversation %s: %w", c.ID, ErrConflict)
	}
	if err := s.wrote(err); err != nil {
		return 0, fmt.Errorf("replace conversation %s: %w", c.ID, err)
	}
	return newRev, nil
}

// ValidKey reports whether key can name a job or a conversation in KV.
func ValidKey(key string) bool { return validKey(key) }
