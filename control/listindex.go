package control

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// jobIndex keeps a summary of every job in memory, sorted newest first, so that a
// page of the list or the overview reads no job from NATS. It is built on the
// first request that needs it, from one watch of the jobs bucket that reads each
// key once and then follows every write; that first request pays for reading the
// whole bucket. Before answering, a request waits (at most indexCatchUp) until the
// index has applied the bucket's last write as of the request, so a job just
// submitted is listed.
type jobIndex struct {
	mu      sync.Mutex
	running bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
	loaded  chan struct{} // closed once the watch delivered every key's value
	err     error         // why the last watch ended
	byID    map[string]*indexEntry
	sorted  []*indexEntry // newest created first, then by id
	applied uint64        // the highest bucket revision applied
	moved   chan struct{} // closed and replaced whenever applied grows
}

type indexEntry struct {
	sum    events.JobSummary
	prompt string // lower case, for the text filter
}

// indexValue is the part of a job value a summary needs: decoding only these
// fields skips allocating the design and the LaTeX.
type indexValue struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Status      events.Status   `json:"status"`
	CurrentStep events.Step     `json:"current_step"`
	Message     string          `json:"message"`
	Prompt      string          `json:"prompt"`
	RetryCount  int             `json:"retry_count"`
	MaxRetries  int             `json:"max_retries"`
	PDFURL      string          `json:"pdf_url"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Description string          `json:"description"`
	Priority    events.Priority `json:"priority"`
	BatchID     string          `json:"batch_id"`
}

// indexCatchUp bounds how long a request waits for the index to apply the
// bucket's latest write (a write whose message was since removed from the stream
// is never delivered).
const indexCatchUp = 2 * time.Second

// before orders a ahead of b in the list: newer first, then by id.
func before(a, b *indexEntry) int {
	if c := b.sum.CreatedAt.Compare(a.sum.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.sum.JobID, b.sum.JobID)
}

// view waits until the index is loaded and caught up with the bucket, then runs fn
// with the index locked.
func (x *jobIndex) view(ctx context.Context, js jetstream.JetStream, fn func(sorted []*indexEntry)) error {
	loaded, err := x.ensure(js)
	if err != nil {
		return err
	}
	select {
	case <-loaded:
	case <-ctx.Done():
		return fmt.Errorf("list jobs: the index of the jobs bucket is still loading: %w", ctx.Err())
	}
	stream, err := js.Stream(ctx, "KV_"+kvstore.BucketJobs)
	if err != nil {
		return fmt.Errorf("list jobs: stream KV_%s: %w", kvstore.BucketJobs, err)
	}
	target := stream.CachedInfo().State.LastSeq
	deadline := time.NewTimer(indexCatchUp)
	defer deadline.Stop()
	for {
		x.mu.Lock()
		if x.applied >= target || !x.running {
			err := x.err
			if x.running {
				fn(x.sorted)
				err = nil
			}
			x.mu.Unlock()
			return err
		}
		moved := x.moved
		x.mu.Unlock()
		select {
		case <-moved:
		case <-deadline.C:
			target = 0
		case <-ctx.Done():
			return fmt.Errorf("list jobs: %w", ctx.Err())
		}
	}
}

// ensure starts the watch unless it runs; it returns the channel closed once the
// watch has loaded every key.
func (x *jobIndex) ensure(js jetstream.JetStream) (<-chan struct{}, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopped {
		return nil, errors.New("list jobs: the pipeline is stopping")
	}
	if x.running {
		return x.loaded, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	kv, err := js.KeyValue(ctx, kvstore.BucketJobs)
	var w jetstream.KeyWatcher
	if err == nil {
		w, err = kv.WatchAll(ctx)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("list jobs: watch bucket %s: %w", kvstore.BucketJobs, err)
	}
	x.running, x.cancel, x.err = true, cancel, nil
	x.done, x.loaded, x.moved = make(chan struct{}), make(chan struct{}), make(chan struct{})
	x.byID, x.sorted, x.applied = map[string]*indexEntry{}, nil, 0
	go x.follow(ctx, w, x.done, x.loaded)
	return x.loaded, nil
}

// follow applies the watch's entries until ctx ends or the watch closes.
func (x *jobIndex) follow(ctx context.Context, w jetstream.KeyWatcher, done, loaded chan struct{}) {
	defer close(done)
	defer func() { _ = w.Stop() }()
	var err error
	for err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				err = errors.New("list jobs: the watch of the jobs bucket closed")
			case e == nil:
				close(loaded)
			default:
				x.apply(e)
			}
		}
	}
	x.mu.Lock()
	x.running, x.err = false, err
	x.mu.Unlock()
	select {
	case <-loaded:
	default:
		close(loaded)
	}
}

// apply puts one write of the bucket into the index.
func (x *jobIndex) apply(e jetstream.KeyValueEntry) {
	var v indexValue
	keep := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &v) == nil && v.ID == e.Key()
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byID[e.Key()]; ok {
		if i, found := slices.BinarySearchFunc(x.sorted, old, before); found {
			x.sorted = slices.Delete(x.sorted, i, i+1)
		}
		delete(x.byID, e.Key())
	}
	if keep {
		n := &indexEntry{prompt: strings.ToLower(v.Prompt), sum: events.JobSummary{
			JobID: v.ID, UserID: v.UserID, Status: v.Status, Step: v.CurrentStep, Message: v.Message,
			Prompt: v.Prompt, RetryCount: v.RetryCount, MaxRetries: v.MaxRetries, PDFURL: v.PDFURL,
			Revision: e.Revision(), CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
			Description: v.Description, Priority: v.Priority, BatchID: v.BatchID,
		}}
		i, _ := slices.BinarySearchFunc(x.sorted, n, before)
		x.sorted = slices.Insert(x.sorted, i, n)
		x.byID[e.Key()] = n
	}
	if e.Revision() > x.applied {
		x.applied = e.Revision()
		close(x.moved)
		x.moved = make(chan struct{})
	}
}

// stop ends the watch for good.
func (x *jobIndex) stop() {
	x.mu.Lock()
	x.stopped = true
	cancel, done := x.cancel, x.done
	x.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
