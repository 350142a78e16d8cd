package main

import (
	"slices"
	"time"
)

// dist is a latency distribution.
type dist struct {
	N        int
	P50, P99 time.Duration
}

// distOf returns the nearest-rank p50 and p99 of ds.
func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return dist{N: len(s), P50: rank(s, 0.50), P99: rank(s, 0.99)}
}

func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// steadyRate is the completion rate between the 10th and the 90th percentile
// completion: the pipeline's rate once full, without its fill and drain.
func steadyRate(done []time.Time) float64 {
	if len(done) < 2 {
		return 0
	}
	s := slices.Clone(done)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	lo, hi := len(s)/10, len(s)-1-len(s)/10
	if hi <= lo {
		lo, hi = 0, len(s)-1
	}
	span := s[hi].Sub(s[lo])
	if span <= 0 {
		return 0
	}
	return float64(hi-lo) / span.Seconds()
}

// batchRate is the completion rate of a stage that works on batch jobs at a
// time: the completions after the batch-th, over the time from the batch-th
// completion to the last. A pipeline that finishes batch jobs every service
// time s then measures exactly batch / s, its fill (the jobs' way to the
// stage and the first batch's service) left out.
func batchRate(done []time.Time, batch int) float64 {
	if len(done) <= batch || batch < 1 {
		return 0
	}
	s := slices.Clone(done)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	span := s[len(s)-1].Sub(s[batch-1])
	if span <= 0 {
		return 0
	}
	return float64(len(s)-batch) / span.Seconds()
}

// span is the time from the first request to the last completion.
func span(traces []*trace) time.Duration {
	var first, last time.Time
	for _, tr := range traces {
		if first.IsZero() || tr.enqueued.Before(first) {
			first = tr.enqueued
		}
		if tr.done.After(last) {
			last = tr.done
		}
	}
	return last.Sub(first)
}

func doneTimes(traces []*trace) []time.Time {
	out := make([]time.Time, 0, len(traces))
	for _, tr := range traces {
		out = append(out, tr.done)
	}
	return out
}

// endToEnd is each job's time from its request being due to its completion.
func endToEnd(traces []*trace) dist {
	ds := make([]time.Duration, 0, len(traces))
	for _, tr := range traces {
		ds = append(ds, tr.done.Sub(tr.enqueued))
	}
	return distOf(ds)
}
