package kvstore

import (
	"context"
	"time"
)

// BucketBatches holds one record per batch of jobs submitted together.
const BucketBatches = "batches"

// Batch is the value of a key in the "batches" bucket: which jobs a batch
// submitted. It is written once, before any of its jobs, and never changed; the
// batch's status is read from its jobs.
type Batch struct {
	ID     string   `json:"id"`
	JobIDs []string `json:"job_ids"`
	// Digest identifies the batch's requests, so that the same batch id sent
	// again with other jobs is refused rather than taken for a resend.
	Digest    string    `json:"digest"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateBatch stores a new batch record; it fails with ErrExists when the id is
// taken.
func (s *Store) CreateBatch(ctx context.Context, b *Batch) (uint64, error) {
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.now().UTC()
	}
	return create(ctx, s, s.batches, b.ID, b)
}

// Batch returns batch id's record and its revision.
func (s *Store) Batch(ctx context.Context, id string) (*Batch, uint64, error) {
	return get[Batch](ctx, s.batchesRead, id)
}
