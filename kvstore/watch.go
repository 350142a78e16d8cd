package kvstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WatchJob calls fn with every value written to job id's key, as it is published:
// one core NATS subscription on the key's subject, no JetStream consumer. A write
// that then fails its revision check is seen too, so a value is a hint to act on
// only after reading the job; fn gets nil for a value that is not a job (a delete).
// fn runs on the connection's delivery goroutine and must not block. stop ends the
// watch.
func (s *Store) WatchJob(id string, fn func(*Job)) (stop func(), err error) {
	sub, err := s.nc.Subscribe("$KV."+BucketJobs+"."+id, func(m *nats.Msg) {
		j := new(Job)
		if json.Unmarshal(m.Data, j) != nil {
			j = nil
		}
		fn(j)
	})
	if err != nil {
		return nil, fmt.Errorf("watch job %s: %w", id, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Follow sends job id's value and revision as it is now, then every later write,
// in revision order, until ctx ends; the channel is then closed. The job must
// exist: Follow does not wait for it to be created.
func (s *Store) Follow(ctx context.Context, id string) (<-chan Versioned, error) {
	w, err := s.jobs.Watch(ctx, id, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("follow job %s: %w", id, err)
	}
	out := make(chan Versioned)
	go func() {
		defer close(out)
		defer stopWatcher(w)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // the end of the current values
				}
				var v Versioned
				if json.Unmarshal(e.Value(), &v.Job) != nil {
					continue
				}
				v.Revision = e.Revision()
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
