package kvstore

import (
	"bytes"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/events"
)

// WatchLease calls fn for every value written to job id's key, as it is
// published, with whether that value still has owner's lease on a running job:
// one core NATS subscription on the key's subject, no JetStream consumer. A write
// that then fails its revision check is seen too, so held=false is a hint to act
// on only after reading the job. fn runs on the connection's delivery goroutine
// and must not block. stop ends the watch.
func (s *Store) WatchLease(id, owner string, fn func(held bool)) (stop func(), err error) {
	running := []byte(`"status":"` + string(events.StatusRunning) + `"`)
	leased := []byte(`"owner":"` + owner + `"`)
	sub, err := s.nc.Subscribe("$KV."+BucketJobs+"."+id, func(m *nats.Msg) {
		fn(heldIn(m.Data, running, leased))
	})
	if err != nil {
		return nil, fmt.Errorf("watch job %s: %w", id, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// heldIn reports whether the encoded job data is running under the lease whose
// owner field is leased, without decoding it: a worker sees every write to its
// job, and decoding each (design and LaTeX included) was a tenth of a stage's
// CPU. Both patterns are whole JSON members: inside a JSON string a quote is
// always escaped, so text such as a design cannot imitate them, and only the
// lease has an owner member.
func heldIn(data, running, leased []byte) bool {
	return bytes.Contains(data, running) && bytes.Contains(data, leased)
}
