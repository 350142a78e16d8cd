package kvstore

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
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
