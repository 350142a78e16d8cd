package kvstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// BucketQueue holds the count of each user's unfinished (active) jobs, for the
// queue limits of package control: key "user.<base64url of user_id>", value the
// count in decimal. It is a tally kept with compare-and-swap (AddQueued) and
// recounted from the active index (SetQueued); a count that reaches 0 stays as
// "0".
const BucketQueue = "queue"

const queueKeyPrefix = "user."

func queueKey(user string) string {
	return queueKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(user))
}

// ActiveHook is told of each write by Update that reopens a job (delta +1) or
// takes its last stage from it (delta -1), after the write. It must not block.
// Create is not reported: whoever creates a job counts it.
type ActiveHook func(j *events.Job, delta int)

type activeHook = atomic.Pointer[ActiveHook]

// OnActiveChange sets the hook told of jobs reopened and finished by Update.
func (s *Store) OnActiveChange(h ActiveHook) { s.hook.Store(&h) }

func (s *Store) activeChanged(j *events.Job, delta int) {
	if h := s.hook.Load(); h != nil && *h != nil {
		(*h)(j, delta)
	}
}

// ActiveCount is the number of records in the active index: the jobs a stage
// may still act on, from the stream's state (one request, no scan).
func (s *Store) ActiveCount(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, scanRequestTimeout)
	defer cancel()
	info, err := s.activeStream.Info(rctx)
	if err != nil {
		return 0, fmt.Errorf("count bucket %s: %w", BucketActive, err)
	}
	return int64(info.State.Msgs), nil
}

// Queued returns user's count and its revision (0, 0 when there is none).
func (s *Store) Queued(ctx context.Context, user string) (int64, uint64, error) {
	e, err := s.queue.Get(ctx, queueKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read %s count of %s: %w", BucketQueue, events.Quoted(user), err)
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		n = 0 // an unreadable count is one the recount repairs
	}
	return n, e.Revision(), nil
}

// AddQueued adds delta to user's count with compare-and-swap, never below 0.
// With limit >= 0 an increase that would take the count over limit writes nothing
// and returns ok false. It returns the count before the change.
func (s *Store) AddQueued(ctx context.Context, user string, delta, limit int64) (before int64, ok bool, err error) {
	for attempt := range maxAttempts {
		n, rev, err := s.Queued(ctx, user)
		if err != nil {
			return 0, false, err
		}
		if delta > 0 && limit >= 0 && n+delta > limit {
			return n, false, nil
		}
		err = s.SetQueued(ctx, user, max(n+delta, 0), rev)
		if !errors.Is(err, ErrConflict) {
			return n, err == nil, err
		}
		s.metrics.CASConflict(BucketQueue)
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))):
		}
	}
	return 0, false, fmt.Errorf("update %s count of %s: %d attempts conflicted", BucketQueue, events.Quoted(user), maxAttempts)
}

// SetQueued writes user's count n if the count is still at rev (0: there is
// none); ErrConflict when it changed.
func (s *Store) SetQueued(ctx context.Context, user string, n int64, rev uint64) error {
	key, data := queueKey(user), []byte(strconv.FormatInt(n, 10))
	var err error
	if rev == 0 {
		_, err = s.queue.Create(ctx, key, data)
	} else {
		_, err = s.queue.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%s count of %s: %w", BucketQueue, events.Quoted(user), ErrConflict)
	}
	if err := s.wrote(err); err != nil {
		return fmt.Errorf("write %s count of %s: %w", BucketQueue, events.Quoted(user), err)
	}
	return nil
}

// EachQueued passes every user's count, with its revision, to fn. An error from
// fn ends the pass and is returned.
func (s *Store) EachQueued(ctx context.Context, fn func(user string, n int64, rev uint64) error) error {
	keys, err := s.queue.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list bucket %s: %w", BucketQueue, err)
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, queueKeyPrefix))
		if err != nil || !strings.HasPrefix(key, queueKeyPrefix) {
			continue
		}
		n, rev, err := s.Queued(ctx, string(raw))
		if err != nil {
			return err
		}
		if rev == 0 {
			continue // gone since the listing
		}
		if err := fn(string(raw), n, rev); err != nil {
			return err
		}
	}
	return nil
}
