package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
)

// JobsHistory is how many values of each job the jobs bucket keeps (its KV
// history): a status event of a job that has been written since is checked
// against the value at its revision while the bucket still holds it (JobAt).
const JobsHistory = 8

var (
	// ErrNotAtRevision means no value of the job was written at the revision a
	// status event names as the one of a change of state: the revision is later
	// than the job's latest, is a write of another key, or is a write that kept
	// the state of an earlier one (a description, the active index). Such an
	// event is forged.
	ErrNotAtRevision = errors.New("no state of the job at that revision")
	// ErrPastHistory means the job has been written more than JobsHistory times
	// since the revision a status event names, so the value at that revision is
	// gone and the event can be neither confirmed nor refuted.
	ErrPastHistory = errors.New("revision older than the job's kept history")
)

// JobAt returns job id as it was at revision rev, the revision of one of its
// status events, read from the stream leader: the job's current value when rev
// is its state revision (Job.StateRevision: no change of state since), else the
// value written at rev from the key's history. ErrNotFound when the job does
// not exist, ErrNotAtRevision when rev is not a revision at which the job's
// state was written, ErrPastHistory when the history no longer reaches rev.
// The caller compares what the event says (status, step) with the value.
func (s *Store) JobAt(ctx context.Context, id string, rev uint64) (*events.Job, error) {
	j, cur, err := s.Get(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case rev > cur:
		// An event is published after its write, and reads go to the leader.
		return nil, fmt.Errorf("job %s at revision %d: %w (its latest is %d)", id, rev, ErrNotAtRevision, cur)
	case rev == j.StateRevision(cur):
		return j, nil
	case rev == cur:
		// The latest write changed no state (EventRev names the one that did).
		return nil, fmt.Errorf("job %s at revision %d: %w", id, rev, ErrNotAtRevision)
	}
	entries, err := s.jobs.History(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("history of job %s: %w", id, err)
	}
	for _, e := range entries {
		if e.Revision() != rev {
			continue
		}
		var old events.Job
		if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &old) != nil || old.StateRevision(rev) != rev {
			return nil, fmt.Errorf("job %s at revision %d: %w", id, rev, ErrNotAtRevision)
		}
		return &old, nil
	}
	if len(entries) > 0 && rev > entries[0].Revision() {
		// Inside the kept history, yet not a write of this key.
		return nil, fmt.Errorf("job %s at revision %d: %w", id, rev, ErrNotAtRevision)
	}
	return nil, fmt.Errorf("job %s at revision %d: %w", id, rev, ErrPastHistory)
}
