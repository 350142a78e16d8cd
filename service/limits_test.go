package service

import (
	"strings"
	"testing"
)

// TestQueueLimitSettings: the queue limits and the JOBS stream's bounds have
// their documented defaults, and a bad value fails at start with its name.
func TestQueueLimitSettings(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxQueued != 100000 || cfg.MaxQueuedPerUser != 10000 || cfg.QueueRecount.String() != "1m0s" ||
		cfg.JobsStreamMaxMsgs != 1000000 || cfg.JobsStreamMaxBytes != 0 {
		t.Fatalf("defaults: max queued %d, per user %d, recount %s, stream max msgs %d, max bytes %d",
			cfg.MaxQueued, cfg.MaxQueuedPerUser, cfg.QueueRecount, cfg.JobsStreamMaxMsgs, cfg.JobsStreamMaxBytes)
	}
	if cfg, err = parse(t, map[string]string{"SHEETPIPE_MAX_QUEUED": "50", "SHEETPIPE_MAX_QUEUED_PER_USER": "0"}); err != nil ||
		queueLimit(cfg.MaxQueued) != 50 || queueLimit(cfg.MaxQueuedPerUser) != -1 {
		t.Fatalf("SHEETPIPE_MAX_QUEUED=50, _PER_USER=0: %+v, %v; want 50 and no limit (-1)", cfg, err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"negative limit", map[string]string{"SHEETPIPE_MAX_QUEUED": "-5"}, "SHEETPIPE_MAX_QUEUED=-5: must be 0 (no limit) or more"},
		{"not a number", map[string]string{"SHEETPIPE_MAX_QUEUED_PER_USER": "lots"}, `$SHEETPIPE_MAX_QUEUED_PER_USER="lots" is not a whole number`},
		{"negative recount", map[string]string{"SHEETPIPE_QUEUE_RECOUNT": "-1s"}, "SHEETPIPE_QUEUE_RECOUNT=-1s"},
		{"stream bound below the queue limit", map[string]string{"SHEETPIPE_JOBS_STREAM_MAX_MSGS": "1000"},
			"SHEETPIPE_JOBS_STREAM_MAX_MSGS=1000: must be more than SHEETPIPE_MAX_QUEUED (100000"},
		{"stream bound without a queue limit", map[string]string{"SHEETPIPE_MAX_QUEUED": "0"}, "SHEETPIPE_JOBS_STREAM_MAX_MSGS=1000000"},
		{"negative bytes", map[string]string{"SHEETPIPE_JOBS_STREAM_MAX_BYTES": "-1"}, "SHEETPIPE_JOBS_STREAM_MAX_BYTES=-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
