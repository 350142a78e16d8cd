package service

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// day is the unit of the days form of SHEETPIPE_RETENTION ("30d").
const day = 24 * time.Hour

// defaultRetention is how long finished jobs are kept by default: 30 days.
const defaultRetention = 30 * day

// errRetention says what SHEETPIPE_RETENTION accepts.
var errRetention = errors.New("want a whole number of days (30d) or a duration (12h, 90m), 0 or more; 0 keeps jobs for ever")

// parseRetention reads SHEETPIPE_RETENTION: a whole number of days ("30d") or a
// Go duration ("12h", "90m"), not negative; "0" disables deletion.
func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/day) {
			return 0, fmt.Errorf("%q: %w", s, errRetention)
		}
		return time.Duration(n) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: %w", s, errRetention)
	}
	return d, nil
}

// formatRetention writes d in the days form when it is whole days.
func formatRetention(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// retentionFlag is the -retention flag: it accepts the days form too.
type retentionFlag struct{ p *time.Duration }

func (f retentionFlag) Set(s string) error {
	d, err := parseRetention(s)
	if err != nil {
		return err
	}
	*f.p = d
	return nil
}

func (f retentionFlag) String() string {
	if f.p == nil {
		return ""
	}
	return formatRetention(*f.p)
}
