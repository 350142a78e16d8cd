package kvstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestCountUsageOnce: the same items counted again (a redelivered ticket, a
// meta ticket's second delivery) change nothing; a later hand-off counts; a
// day, a user (even one whose id is a prefix of another's, or holds dots and
// spaces) and a period count apart; concurrent counts all land.
func TestCountUsageOnce(t *testing.T) {
	st, _, ctx := setup(t)
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	next := day.AddDate(0, 0, 1)
	one := events.Totals{PromptTokens: 10, CompletionTokens: 5, Calls: 1, CostUSD: 0.25}
	count := func(user string, d time.Time, job string, items ...kvstore.UsageItem) {
		t.Helper()
		if err := st.CountUsage(ctx, user, d, job, items); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(user string, since, until time.Time) events.Totals {
		t.Helper()
		got, err := st.UsageOf(ctx, user, since, until)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for range 3 {
		count("ann", day, "job-1", kvstore.UsageItem{Seq: 1, Totals: one}, kvstore.UsageItem{Seq: 2, Totals: one})
		count("ann", day, "job-1", kvstore.UsageItem{Seq: 2, Meta: true, Totals: one})
	}
	count("ann", day, "job-1", kvstore.UsageItem{Seq: 3, Totals: one}) // a later hand-off
	count("ann", day, "job-1", kvstore.UsageItem{Seq: 2, Totals: one}) // an old one again
	count("ann", next, "job-1", kvstore.UsageItem{Seq: 3, Totals: one})
	count("ann.b", day, "job-2", kvstore.UsageItem{Seq: 1, Totals: one})
	count("an", day, "job-3", kvstore.UsageItem{Seq: 1, Totals: one})
	count("a user with spaces/and.dots", day, "job-4", kvstore.UsageItem{Seq: 1, Totals: one})

	times := func(n int64) events.Totals {
		return events.Totals{PromptTokens: n * 10, CompletionTokens: n * 5, Calls: n, CostUSD: float64(n) * 0.25}
	}
	for _, tc := range []struct {
		user         string
		since, until time.Time
		want         events.Totals
	}{
		{"ann", day, day, times(4)},
		{"ann", next, next, times(1)},
		{"ann", day, next, times(5)},
		{"ann", day.AddDate(0, 0, -5), day.AddDate(0, 0, -1), times(0)},
		{"ann.b", day, next, times(1)},
		{"an", day, next, times(1)},
		{"a user with spaces/and.dots", day, day, times(1)},
		{"nobody", day, next, times(0)},
	} {
		if got := sum(tc.user, tc.since, tc.until); got != tc.want {
			t.Errorf("usage of %q %s..%s: %+v, want %+v", tc.user, tc.since.Format(events.DayLayout), tc.until.Format(events.DayLayout), got, tc.want)
		}
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := st.CountUsage(ctx, "busy", day, "job-"+string(rune('a'+i)), []kvstore.UsageItem{{Seq: 1, Totals: one}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := sum("busy", day, day); got != times(20) {
		t.Errorf("20 concurrent counts: %+v, want %+v", got, times(20))
	}
}
