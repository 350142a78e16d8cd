package kvstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// scan is every watcher pass of kvstore: it streams the latest entry of each key
// of kv matching keys (jetstream.AllKeys, or a pattern such as "<id>.*") to fn,
// one at a time and in no particular order, without loading the bucket into
// memory. The watcher marks the end of the entries present, so a pass cut short
// (a cancelled ctx, a closed watcher) is an error rather than a silently
// shorter pass; what names the pass in that error. An error from fn ends the
// pass and is returned as is. opts are the watcher's (IgnoreDeletes, MetaOnly).
func scan(ctx context.Context, kv jetstream.KeyValue, what, keys string, fn func(jetstream.KeyValueEntry) error, opts ...jetstream.WatchOpt) error {
	w, err := kv.Watch(ctx, keys, opts...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer stopWatcher(w)
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return fmt.Errorf("%s: watcher closed", what)
			case e == nil:
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// stopWatcher unsubscribes w and drains what it still delivers, so its delivery
// goroutine is not left blocked on a full channel.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-deadline.C:
			return
		}
	}
}
