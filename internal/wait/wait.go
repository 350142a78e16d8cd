// Package wait holds the one way sheetpipe pauses: for a duration, unless the
// context ends first.
package wait

import (
	"context"
	"time"
)

// Sleep waits d and reports whether it did so before ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
