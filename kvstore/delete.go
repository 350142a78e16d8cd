package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Delete removes job id if it is still at revision rev: a purge of the key
// guarded by the revision, so a job written after it was read (a retry, a
// refinement) is kept and ErrConflict is returned. A job already deleted is a
// conflict too: of several deleters only one succeeds.
func (s *Store) Delete(ctx context.Context, id string, rev uint64) error {
	if rev == 0 {
		return fmt.Errorf("delete %s: no revision given", id)
	}
	return purge(ctx, s.jobs, id, rev)
}

// DeleteConversation removes conversation id, only while it is at revision rev
// unless rev is 0. Removing a conversation that is already gone succeeds.
func (s *Store) DeleteConversation(ctx context.Context, id string, rev uint64) error {
	return purge(ctx, s.convs, id, rev)
}

// EachConversation streams the id, revision and time of last write of every
// conversation to fn, in no particular order and without reading the
// conversations themselves. An error from fn ends the pass and is returned.
func (s *Store) EachConversation(ctx context.Context, fn func(id string, rev uint64, updated time.Time) error) error {
	return scan(ctx, s.convs, "scan bucket "+BucketConversations, jetstream.AllKeys, func(e jetstream.KeyValueEntry) error {
		return fn(e.Key(), e.Revision(), e.Created())
	}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
}

// purge removes every revision of key, leaving a purge marker; with rev > 0 only
// while the key is at rev.
func purge(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	if !validKey(key) {
		return fmt.Errorf("delete %s: %w", key, ErrNotFound)
	}
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := kv.Purge(ctx, key, opts...)
	switch {
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("delete %s at revision %d: %w", key, rev, ErrConflict)
	case err != nil:
		return fmt.Errorf("delete %s: %w", key, Classify(err))
	}
	return nil
}

// PurgeMarkers removes the markers that deletions made before cutoff left in
// the jobs and conversations buckets, so that deleted keys take no space for
// ever. It removes a marker and what precedes it, never a value written after
// it under the same key.
func (s *Store) PurgeMarkers(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	for _, b := range []struct {
		name   string
		kv     jetstream.KeyValue
		stream jetstream.Stream
	}{{BucketJobs, s.jobs, s.jobsStream}, {BucketConversations, s.convs, s.convsStream}} {
		m, err := purgeMarkers(ctx, b.name, b.kv, b.stream, cutoff)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func purgeMarkers(ctx context.Context, bucket string, kv jetstream.KeyValue, stream jetstream.Stream, cutoff time.Time) (int, error) {
	var markers []jetstream.KeyValueEntry
	err := scan(ctx, kv, "scan bucket "+bucket, jetstream.AllKeys, func(e jetstream.KeyValueEntry) error {
		if e.Operation() != jetstream.KeyValuePut && e.Created().Before(cutoff) {
			markers = append(markers, e)
		}
		return nil
	}, jetstream.MetaOnly())
	if err != nil {
		return 0, err
	}
	for i, e := range markers {
		// Every message of the key below the one after its marker.
		err := stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bucket+"."+e.Key()), jetstream.WithPurgeSequence(e.Revision()+1))
		if err != nil {
			return i, fmt.Errorf("purge marker of %s: %w", e.Key(), Classify(err))
		}
	}
	return len(markers), nil
}
