package kvstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Bucket names of the contract (declared in events, where the contract lives).
const (
	BucketJobs          = events.BucketJobs
	BucketConversations = events.BucketConversations
)

// maxAttempts bounds the CAS loop; with jittered back-off it outlasts 100 writers
// on one key.
const maxAttempts = 500

// Store reads and writes jobs, conversations and the index of dependents.
type Store struct {
	jobs  jetstream.KeyValue
	convs jetstream.KeyValue
	// jobsStream and convsStream are the buckets' streams, for PurgeMarkers.
	jobsStream  jetstream.Stream
	convsStream jetstream.Stream
	batches     jetstream.KeyValue
	jobsRead    leaderReader
	convsRead   leaderReader
	batchesRead leaderReader
	deps        jetstream.KeyValue
	// active indexes the jobs a stage may still act on (active.go).
	active       jetstream.KeyValue
	activeStream jetstream.Stream
	// queue holds each user's count of unfinished jobs (queue.go).
	queue jetstream.KeyValue
	// usage holds the per-user, per-day usage counters (usage.go).
	usage   jetstream.KeyValue
	nc      *nats.Conn
	metrics *metrics.Metrics
	storage storageHealth
	now     func() time.Time
	// hook is told of jobs reopened and finished (queue.go).
	hook activeHook
}

// New binds the existing buckets (the broker package creates them).
func New(ctx context.Context, js jetstream.JetStream, m *metrics.Metrics) (*Store, error) {
	jobs, err := js.KeyValue(ctx, BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketJobs, err)
	}
	convs, err := js.KeyValue(ctx, BucketConversations)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketConversations, err)
	}
	jobsStream, err := js.Stream(ctx, "KV_"+BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketJobs, err)
	}
	convsStream, err := js.Stream(ctx, "KV_"+BucketConversations)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketConversations, err)
	}
	batches, err := js.KeyValue(ctx, BucketBatches)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketBatches, err)
	}
	deps, err := js.KeyValue(ctx, BucketDependents)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketDependents, err)
	}
	active, err := js.KeyValue(ctx, BucketActive)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketActive, err)
	}
	activeStream, err := js.Stream(ctx, "KV_"+BucketActive)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketActive, err)
	}
	queue, err := js.KeyValue(ctx, BucketQueue)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketQueue, err)
	}
	usage, err := js.KeyValue(ctx, BucketUsage)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketUsage, err)
	}
	return &Store{usage: usage, jobs: jobs, convs: convs, jobsStream: jobsStream, convsStream: convsStream, batches: batches, deps: deps, active: active, activeStream: activeStream, queue: queue, jobsRead: newLeaderReader(js, BucketJobs),
		convsRead: newLeaderReader(js, BucketConversations), batchesRead: newLeaderReader(js, BucketBatches),
		nc: js.Conn(), metrics: m, now: time.Now}, nil
}

// Create stores a new job; it fails with ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, j *events.Job) (uint64, error) {
	if j.Active() {
		if err := s.activate(ctx, j); err != nil {
			return 0, err
		}
	}
	now := s.now().UTC()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.UpdatedAt = now
	j.Incarnate()
	return create(ctx, s, s.jobs, j.ID, j)
}

// Get returns a job and its revision.
func (s *Store) Get(ctx context.Context, id string) (*events.Job, uint64, error) {
	return get[events.Job](ctx, s.jobsRead, id)
}

// Update applies fn to the current job and writes it with compare-and-swap,
// re-reading and re-applying fn after a concurrent write. fn may be called several
// times and must only change the job it is given. An error from fn ends the loop
// with no write and is returned as is (ErrNoChange: the current job is returned
// with a nil error). UpdatedAt is set on every write. opts (From, AtRevision,
// KeepEvent) change where the loop starts, what it accepts and what it sets.
func (s *Store) Update(ctx context.Context, id string, fn func(*events.Job) error, opts ...UpdateOption) (*events.Job, uint64, error) {
	var o updateOptions
	for _, opt := range opts {
		opt(&o)
	}
	return s.updateJob(ctx, id, o, fn)
}

func (s *Store) updateJob(ctx context.Context, id string, o updateOptions, fn func(*events.Job) error) (*events.Job, uint64, error) {
	var wasActive bool
	j, rev, err := update(ctx, s, s.jobs, s.jobsRead, BucketJobs, id, o.hint, func(j *events.Job, rev uint64) error {
		if o.at != nil && rev != *o.at {
			return &events.StaleError{JobID: id, IfRevision: *o.at, Revision: rev}
		}
		wasActive = j.Active()
		if err := o.apply(j, rev, fn); err != nil {
			return err
		}
		if !wasActive && j.Active() {
			// Reopened (a retry, edit or refine): indexed before it is written.
			if err := s.activate(ctx, j); err != nil {
				return err
			}
		}
		j.UpdatedAt = s.now().UTC()
		return nil
	})
	if err == nil && wasActive && !j.Active() && j.ActiveRev != 0 {
		s.deactivateLater(j.ID, j.ActiveRev)
	}
	switch {
	case err == nil && wasActive && !j.Active():
		s.activeChanged(j, -1)
	case err == nil && !wasActive && j.Active():
		s.activeChanged(j, +1)
	}
	return j, rev, err
}

// EachJob streams the latest value of every job, with its revision, to fn, one at a time and in no
// particular order, without loading the bucket into memory: one pass reads each key
// once. A value that does not decode is passed as a nil job with the decode error.
// An error from fn ends the pass and is returned.
func (s *Store) EachJob(ctx context.Context, fn func(id string, j *events.Job, rev uint64, err error) error) error {
	return s.eachJob(ctx, nil, fn)
}

// EachUnfinishedJob is EachJob without the jobs that are completed, aborted or
// waiting_manual, which it skips without decoding them: a bucket is mostly
// finished jobs, and decoding each (design and LaTeX included) on every sweep was
// a burst of CPU that grew with the bucket.
func (s *Store) EachUnfinishedJob(ctx context.Context, fn func(id string, j *events.Job, rev uint64, err error) error) error {
	return s.eachJob(ctx, finishedValue, fn)
}

// finishedStatuses are the members a value holds in a status in which every
// job is finished (events.FinishedStatus). Inside a JSON string a quote is
// always escaped, so no text of the job can imitate them.
var finishedStatuses = func() [][]byte {
	var ms [][]byte
	for _, st := range events.Statuses() {
		if events.FinishedStatus(st) {
			ms = append(ms, []byte(`"status":"`+string(st)+`"`))
		}
	}
	return ms
}()

func finishedValue(data []byte) bool {
	for _, m := range finishedStatuses {
		if bytes.Contains(data, m) {
			return true
		}
	}
	return false
}

func (s *Store) eachJob(ctx context.Context, skip func([]byte) bool, fn func(id string, j *events.Job, rev uint64, err error) error) error {
	return scan(ctx, s.jobs, "scan bucket "+BucketJobs, jetstream.AllKeys, func(e jetstream.KeyValueEntry) error {
		if skip != nil && skip(e.Value()) {
			return nil
		}
		j := new(events.Job)
		var derr error
		if err := json.Unmarshal(e.Value(), j); err != nil {
			j, derr = nil, fmt.Errorf("decode %s: %w", e.Key(), err)
		}
		return fn(e.Key(), j, e.Revision(), derr)
	}, jetstream.IgnoreDeletes())
}

// Conversation returns a conversation and its revision.
func (s *Store) Conversation(ctx context.Context, id string) (*events.Conversation, uint64, error) {
	return get[events.Conversation](ctx, s.convsRead, id)
}

// Converse applies fn to the conversation id, creating it for jobID when it does
// not exist yet, with the same compare-and-swap loop as Update.
func (s *Store) Converse(ctx context.Context, id, jobID string, fn func(*events.Conversation) error) (*events.Conversation, uint64, error) {
	c, rev, err := s.converse(ctx, id, hint[events.Conversation]{}, fn)
	if !errors.Is(err, ErrNotFound) {
		return c, rev, err
	}
	return s.ConverseFrom(ctx, id, jobID, nil, 0, fn)
}

// ConverseFrom is Converse starting from from, the conversation the caller read
// at revision rev, or from nil when the caller found none: the first attempt
// writes without reading again (creating the conversation when from is nil).
func (s *Store) ConverseFrom(ctx context.Context, id, jobID string, from *events.Conversation, rev uint64, fn func(*events.Conversation) error) (*events.Conversation, uint64, error) {
	if from != nil {
		return s.converse(ctx, id, hint[events.Conversation]{from.Clone(), rev}, fn)
	}
	now := s.now().UTC()
	c := &events.Conversation{ID: id, JobID: jobID, Messages: []events.Message{}, CreatedAt: now, UpdatedAt: now}
	if err := fn(c); err != nil {
		if errors.Is(err, ErrNoChange) {
			return c, 0, nil
		}
		return c, 0, err
	}
	rev, err := create(ctx, s, s.convs, id, c)
	if errors.Is(err, ErrExists) {
		// Another first turn created it meanwhile: this one is an update after all.
		return s.converse(ctx, id, hint[events.Conversation]{}, fn)
	}
	if err != nil {
		return nil, 0, err
	}
	return c, rev, nil
}

func (s *Store) converse(ctx context.Context, id string, h hint[events.Conversation], fn func(*events.Conversation) error) (*events.Conversation, uint64, error) {
	return update(ctx, s, s.convs, s.convsRead, BucketConversations, id, h, func(c *events.Conversation, _ uint64) error {
		if err := fn(c); err != nil {
			return err
		}
		c.UpdatedAt = s.now().UTC()
		return nil
	})
}

func create[T any](ctx context.Context, s *Store, kv jetstream.KeyValue, key string, v *T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", key, err)
	}
	rev, err := kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("create %s: %w", key, ErrExists)
	}
	if err := s.wrote(err); err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	return rev, nil
}

func get[T any](ctx context.Context, r leaderReader, key string) (*T, uint64, error) {
	data, rev, err := r.get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, rev, nil
}

// hint is a value of a key the caller already holds, at its revision: a copy of
// its own (Clone), which update's first attempt gives fn to change instead of
// reading the key.
type hint[T any] struct {
	v   *T
	rev uint64
}

func update[T any](ctx context.Context, s *Store, kv jetstream.KeyValue, r leaderReader, bucket, key string, h hint[T], fn func(*T, uint64) error) (*T, uint64, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		hinted := attempt == 0 && h.v != nil
		var v *T
		var rev uint64
		var err error
		if hinted {
			v, rev = h.v, h.rev
		} else {
			v, rev, err = get[T](ctx, r, key)
		}
		if err != nil {
			return nil, 0, err
		}
		if err := fn(v, rev); hinted && err != nil {
			continue // decide on the stored value, not on the hint
		} else if errors.Is(err, ErrNoChange) {
			return v, rev, nil
		} else if err != nil {
			return v, rev, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, 0, fmt.Errorf("encode %s: %w", key, err)
		}
		newRev, err := kv.Update(ctx, key, data, rev)
		if err == nil {
			s.storage.note(nil)
			return v, newRev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, 0, fmt.Errorf("update %s: %w", key, s.wrote(err))
		}
		if hinted {
			continue // an old hint is not contention: read and try again
		}
		s.metrics.CASConflict(bucket)
		if err := backoff(ctx, attempt); err != nil {
			return nil, 0, fmt.Errorf("update %s: %w", key, err)
		}
	}
	return nil, 0, fmt.Errorf("update %s after %d attempts: %w", key, maxAttempts, ErrContention)
}

// backoff waits a jittered, growing pause (at most 10ms) before the next attempt.
func backoff(ctx context.Context, attempt int) error {
	limit := time.Duration(min(attempt+1, 10)) * time.Millisecond
	t := time.NewTimer(rand.N(limit) + time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
