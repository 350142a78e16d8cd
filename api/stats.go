package api

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
)

// endpointStats are an endpoint's micro stats, counted by the endpoint itself when
// a reply is sent: requests are answered after the subscription's handler returns,
// where micro's own counting (around the handler, errors only through
// micro.Request) would see microseconds and no errors.
type endpointStats struct {
	mu         sync.Mutex
	requests   int
	errors     int
	lastError  string // "code:message", as micro writes it
	processing time.Duration
}

// done counts one answered request that took d; failure is "" or the error
// reply's "code:message".
func (s *endpointStats) done(d time.Duration, failure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.processing += d
	if failure != "" {
		s.errors++
		s.lastError = failure
	}
}

// snapshot returns the counts; the caller names the endpoint.
func (s *endpointStats) snapshot() micro.EndpointStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := micro.EndpointStats{NumRequests: s.requests, NumErrors: s.errors, LastError: s.lastError, ProcessingTime: s.processing}
	if s.requests > 0 {
		e.AverageProcessingTime = s.processing / time.Duration(s.requests)
	}
	return e
}
