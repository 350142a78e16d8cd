package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
)

// TestQueue: sheetctl queue --user shows a user's unfinished jobs against the
// per-user limit (two jobs held waiting for a dependency that waits for its
// user), as text and as JSON.
func TestQueue(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	c := newTestClient(t, s)
	manual := waitingManualJob(ctx, t, c)
	for _, p := range []string{"first", "second"} {
		if _, err := c.Submit(ctx, events.JobRequest{UserID: "grace", Prompt: p + " " + prompt, DependsOn: []string{manual}}); err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	r := runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "queue", "--user", "grace")
	if r.code != exitOK || !strings.Contains(r.stdout, "unfinished    2 of 100000\n") ||
		!strings.Contains(r.stdout, `user "grace"  2 of 10000`) {
		t.Fatalf("queue --user grace: exit %d, stderr %q, stdout:\n%s\nwant 2 of 100000 in all and 2 of 10000 for grace", r.code, r.stderr, r.stdout)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "queue", "--json", "--user", "grace")
	var q events.QueueReply
	if err := json.Unmarshal([]byte(r.stdout), &q); err != nil || r.code != exitOK || q.User == nil ||
		*q.User != (events.UserQueue{UserID: "grace", Queued: 2}) || q.MaxPerUser != 10000 || q.Max != 100000 {
		t.Fatalf("queue --json --user grace: exit %d (%v): %s", r.code, err, r.stdout)
	}
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "queue", "grace")
	if r.code == exitOK || !strings.Contains(r.stderr, "queue takes no arguments") {
		t.Fatalf("queue grace: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
}
