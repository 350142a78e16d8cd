package kvstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// BucketUsage is the per-user, per-day usage counters (events.BucketUsage).
const BucketUsage = events.BucketUsage

// UsageItem is one counted thing of a job: the answers of hand-off Seq
// recorded in its conversation, or (Meta) the description of its LaTeX of
// hand-off Seq, and what they cost.
type UsageItem struct {
	Seq    uint64
	Meta   bool
	Totals events.Totals
}

// usageKey is the key of user's counter of day: the user id in base64url
// (any user id is a valid key then, and no user's keys match another's
// filter), a dot, the day.
func usageKey(user string, day time.Time) string {
	return usagePrefix(user) + "." + day.UTC().Format(events.DayLayout)
}

func usagePrefix(user string) string { return base64.RawURLEncoding.EncodeToString([]byte(user)) }

// CountUsage adds items of job jobID to user's counter of day, each unless
// the counter counted it already: an item counts once per job, hand-off and
// kind, so counting the same items again (a ticket redelivered after a crash)
// changes nothing. The counter is created on its first count; concurrent
// counts meet in the same CAS loop as every write of this package.
func (s *Store) CountUsage(ctx context.Context, user string, day time.Time, jobID string, items []UsageItem) error {
	key := usageKey(user, day)
	count := func(d *events.UsageDay) error {
		mark := d.Jobs[jobID]
		next, changed := mark, false
		for _, it := range items {
			switch {
			case it.Meta && it.Seq > mark.MetaSeq:
				next.MetaSeq = max(next.MetaSeq, it.Seq)
			case !it.Meta && it.Seq > mark.Seq:
				next.Seq = max(next.Seq, it.Seq)
			default:
				continue
			}
			d.Totals.Add(it.Totals)
			changed = true
		}
		if !changed {
			return ErrNoChange
		}
		if d.Jobs == nil {
			d.Jobs = map[string]events.UsageMark{}
		}
		d.Jobs[jobID] = next
		return nil
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		d, rev := &events.UsageDay{}, uint64(0)
		e, err := s.usage.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), d); err != nil {
				return fmt.Errorf("decode usage %s: %w", key, err)
			}
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("read usage %s: %w", key, err)
		}
		if err := count(d); errors.Is(err, ErrNoChange) {
			return nil
		}
		data, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode usage %s: %w", key, err)
		}
		if rev == 0 {
			_, err = s.usage.Create(ctx, key, data)
		} else {
			_, err = s.usage.Update(ctx, key, data, rev)
		}
		if err == nil {
			s.storage.note(nil)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("count usage %s: %w", key, s.wrote(err))
		}
		s.metrics.CASConflict(BucketUsage)
		if err := backoff(ctx, attempt); err != nil {
			return fmt.Errorf("count usage %s: %w", key, err)
		}
	}
	return fmt.Errorf("count usage %s after %d attempts: %w", key, maxAttempts, ErrContention)
}

// UsageOf sums user's counters of the days since..until (both included). It
// reads that user's counters only (a watch filtered on the user's keys), never
// the jobs.
func (s *Store) UsageOf(ctx context.Context, user string, since, until time.Time) (events.Totals, error) {
	var sum events.Totals
	prefix := usagePrefix(user) + "."
	first, last := since.UTC().Format(events.DayLayout), until.UTC().Format(events.DayLayout)
	err := scan(ctx, s.usage, "usage of "+user, prefix+"*", func(e jetstream.KeyValueEntry) error {
		day := strings.TrimPrefix(e.Key(), prefix)
		if day < first || day > last { // YYYY-MM-DD sorts as it counts
			return nil
		}
		var d events.UsageDay
		if err := json.Unmarshal(e.Value(), &d); err != nil {
			return fmt.Errorf("decode usage %s: %w", e.Key(), err)
		}
		sum.Add(d.Totals)
		return nil
	}, jetstream.IgnoreDeletes())
	return sum, err
}
