package service

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/events"
)

// fifo parses Fairness: true when it is off (docs/fairness.md).
func (c Config) fifo() (bool, error) {
	switch strings.TrimSpace(strings.ToLower(c.Fairness)) {
	case "", "on":
		return false, nil
	case "off":
		return true, nil
	}
	return false, fmt.Errorf("SHEETPIPE_FAIRNESS=%q: want on or off", c.Fairness)
}

// userConcurrency parses UserConcurrency: a number for every stage ("2"), or
// stage=number pairs ("design=1,compile=2"); 0 is no cap.
func (c Config) userConcurrency() (map[events.Stage]int, error) {
	out := map[events.Stage]int{}
	v := strings.TrimSpace(c.UserConcurrency)
	if v == "" {
		return out, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return nil, fmt.Errorf("SHEETPIPE_USER_CONCURRENCY=%q: must be 0 (no cap) or more", v)
		}
		for _, st := range events.Runnable() {
			out[st] = n
		}
		return out, nil
	}
	for _, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		st := events.Stage(strings.TrimSpace(name))
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if !ok || !st.Runnable() || err != nil || n < 0 {
			return nil, fmt.Errorf("SHEETPIPE_USER_CONCURRENCY: %q is not a number or stage=number (stages prompt,design,latex,compile,fix,meta; number >= 0, 0 = no cap)", part)
		}
		out[st] = n
	}
	return out, nil
}

// validateFairness checks the fairness settings.
func (c Config) validateFairness() []error {
	var errs []error
	if _, err := c.fifo(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.userConcurrency(); err != nil {
		errs = append(errs, err)
	}
	if c.FairWindow < 0 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_FAIR_WINDOW=%d: must be at least 1 (0 takes the default %d)", c.FairWindow, consumers.DefaultFairWindow))
	}
	return errs
}
