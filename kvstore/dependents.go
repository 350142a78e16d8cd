package kvstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketDependents is the reverse index of depends_on: key
// "<dependency_id>.<dependent_id>", an empty value, and a marker key
// "<dependency_id>" for every job that has dependents. It lets the end of a job's
// run find the jobs that wait for it without scanning every job, and the end of
// a job without dependents (nearly all) costs one read.
const BucketDependents = "dependents"

// AddDependent records that job dependent depends on each of deps. A key that
// exists is written again (Put is idempotent), so a retried request is harmless.
func (s *Store) AddDependent(ctx context.Context, dependent string, deps []string) error {
	for _, dep := range deps {
		key := dep + "." + dependent
		if !validKey(key) {
			return fmt.Errorf("index dependency %s of %s: invalid key", dep, dependent)
		}
		// The marker first: a lookup that finds no marker finds no dependents.
		if _, err := s.deps.Put(ctx, dep, nil); err != nil {
			return fmt.Errorf("index dependency %s of %s: %w", dep, dependent, s.wrote(err))
		}
		if _, err := s.deps.Put(ctx, key, nil); err != nil {
			return fmt.Errorf("index dependency %s of %s: %w", dep, dependent, s.wrote(err))
		}
	}
	return nil
}

// Dependents lists the jobs recorded as depending on job dep. It reads the
// index through a watcher, which marks the end of the keys present, so a listing
// cut short is an error rather than a silently shorter list.
func (s *Store) Dependents(ctx context.Context, dep string) ([]string, error) {
	if !validKey(dep) || strings.Contains(dep, ".") {
		return nil, fmt.Errorf("dependents of %s: not a job id", dep)
	}
	if _, err := s.deps.Get(ctx, dep); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("dependents of %s: %w", dep, err)
	}
	seen := map[string]bool{}
	var ids []string
	err := scan(ctx, s.deps, "dependents of "+dep, dep+".*", func(e jetstream.KeyValueEntry) error {
		if id := strings.TrimPrefix(e.Key(), dep+"."); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
		return nil
	}, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	return ids, nil
}
