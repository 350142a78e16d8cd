package control

import (
	"context"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// Usage answers a user's LLM usage over a period (q.Period: by default the 30
// days up to today, UTC) from the user's daily counters, never scanning jobs.
func (p *Plane) Usage(ctx context.Context, q events.UsageQuery) (events.UsageReply, error) {
	since, until, err := q.Period(time.Now())
	if err != nil {
		return events.UsageReply{}, err
	}
	t, err := p.store.UsageOf(ctx, q.UserID, since, until)
	if err != nil {
		return events.UsageReply{}, err
	}
	return events.UsageReply{UserID: q.UserID, Since: since.Format(events.DayLayout), Until: until.Format(events.DayLayout), Totals: t}, nil
}
