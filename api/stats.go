package api

import (
	"sync"
	"time"
)

// endpointStats counts what micro's own endpoint stats cannot see: requests are
// answered after Handle returns, so micro's errors and processing times would
// miss them. `nats micro stats sheetpipe` shows these under each endpoint's data.
type endpointStats struct {
	mu         sync.Mutex
	answered   int
	errors     int
	lastError  string
	processing time.Duration
}

// statsData is the JSON of an endpoint's stats data.
type statsData struct {
	Answered              int           `json:"answered"`
	Errors                int           `json:"errors"`
	LastError             string        `json:"last_error,omitempty"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

func (s *endpointStats) done(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered++
	s.processing += d
	if err != nil {
		s.errors++
		s.lastError = err.Error()
	}
}

func (s *endpointStats) snapshot() statsData {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := statsData{Answered: s.answered, Errors: s.errors, LastError: s.lastError}
	if s.answered > 0 {
		d.AverageProcessingTime = s.processing / time.Duration(s.answered)
	}
	return d
}
