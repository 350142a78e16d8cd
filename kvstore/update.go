package kvstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sheetpipe/sheetpipe/events"
)

// UpdateOption changes what Update (and Describe) does; see From, AtRevision and
// KeepEvent.
type UpdateOption func(*updateOptions)

type updateOptions struct {
	hint      hint[events.Job]
	at        *uint64
	keepEvent bool
	metaOnly  bool
}

// From starts the update from j, a value of the job the caller holds at revision
// rev (typically its own last write): the first attempt skips the read, so when
// nobody wrote since, the update costs one round trip instead of two. A stale j
// costs one refused write and then the update reads as without it; an error
// from fn on j is decided again on the stored value, so a stale j never makes fn
// act on old state. j is not changed; a nil j is no option.
func From(j *events.Job, rev uint64) UpdateOption {
	return func(o *updateOptions) {
		if j != nil {
			o.hint = hint[events.Job]{j.Clone(), rev}
		}
	}
}

// AtRevision refuses the update unless the job is at revision rev: fn runs only
// on the job at rev and the write expects rev itself, so of two updates at the
// same rev one is written and the other, on its retry, finds the job at another
// revision. That one fails with a *events.StaleError (errors.Is events.ErrStale
// and events.ErrConflict) naming the current revision, writing nothing.
// Revisions start at 1: no job is at revision 0.
func AtRevision(rev uint64) UpdateOption {
	return func(o *updateOptions) { o.at = &rev }
}

// KeepEvent marks a write that changes no state (no status event of its own):
// after fn, EventRev is set to the state revision of the job as read
// (events.Job.StateRevision), so a re-emitted event repeats the job's last one.
func KeepEvent() UpdateOption {
	return func(o *updateOptions) { o.keepEvent = true }
}

// Describe is Update for the meta stage's write: fn may change the job's
// description, tags, MetaSeq, MetaError and Usage and nothing else. A fn that changes
// any other field (status, step, stage, seq, lease, EventRev, ...) is refused
// with ErrNotMeta and nothing is written. The write has no status event of its
// own (KeepEvent is implied), so a stage worker holding the job's lease is not
// disturbed by it beyond one CAS retry. opts are Update's.
func (s *Store) Describe(ctx context.Context, id string, fn func(*events.Job) error, opts ...UpdateOption) (*events.Job, uint64, error) {
	return s.Update(ctx, id, fn, append(opts, func(o *updateOptions) { o.metaOnly, o.keepEvent = true, true })...)
}

// apply runs fn on j, read at rev, with the options' checks and settings.
func (o updateOptions) apply(j *events.Job, rev uint64, fn func(*events.Job) error) error {
	var before []byte
	var meta metaFields
	if o.metaOnly {
		var err error
		if before, err = json.Marshal(j); err != nil {
			return fmt.Errorf("encode %s: %w", j.ID, err)
		}
		meta = metaOf(j)
	}
	if err := fn(j); err != nil {
		return err
	}
	if o.metaOnly {
		c := j.Clone()
		meta.set(c)
		after, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode %s: %w", j.ID, err)
		}
		if !bytes.Equal(before, after) {
			return fmt.Errorf("describe job %s: %w", j.ID, ErrNotMeta)
		}
	}
	if o.keepEvent {
		j.EventRev = j.StateRevision(rev)
	}
	return nil
}

// metaFields are the fields of a job Describe may change.
type metaFields struct {
	description string
	tags        []string
	metaSeq     uint64
	metaError   string
	// usage: the meta stage counts its calls in the job's usage.
	usage *events.Usage
}

func metaOf(j *events.Job) metaFields {
	return metaFields{j.Description, slices.Clone(j.Tags), j.MetaSeq, j.MetaError, j.Usage.Clone()}
}

func (m metaFields) set(j *events.Job) {
	j.Description, j.Tags, j.MetaSeq, j.MetaError, j.Usage = m.description, m.tags, m.metaSeq, m.metaError, m.usage
}
