// Package metrics declares every Prometheus collector sheetpipe exports (prefix
// sheetpipe_) and registers them on a registry passed in. Label values are bounded:
// steps, statuses, outcomes, buckets and consumer names, never a job id.
package metrics
