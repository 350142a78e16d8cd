package consumers

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/worker"
)

// Config tunes the pipeline.
type Config struct {
	// Concurrency is how many messages of each stage this process works on at once.
	// Default: prompt 32, design 16, latex 16, fix 8, meta 4, compile = number of
	// CPUs.
	Concurrency map[events.Stage]int
	// RetryBase is the first back-off after a transient failure; it doubles with
	// each retry. Default 1s.
	RetryBase time.Duration
	// RetryMax caps the back-off. Default 1m.
	RetryMax time.Duration
	// AckWait must equal the consumers' AckWait; heartbeats go every third of it.
	// Default 30s.
	AckWait time.Duration
	// LeaseTTL is how long a running job's lease lasts without renewal; it is renewed
	// every third of it. Default 30s.
	LeaseTTL time.Duration
	// NoCompileCache compiles every source even when the same LaTeX compiled
	// before (see pdfCache). Default false: identical LaTeX is compiled once.
	NoCompileCache bool
	// PublicURL prefixes the pdf_url of a completed job ("/jobs/<id>/pdf").
	// Default empty.
	PublicURL string
	// MetaAttempts is how many deliveries of one meta ticket may try to describe a
	// job before the meta stage gives up on it (the job keeps no description).
	// Default 4.
	MetaAttempts int
	// Prices turn the LLM's tokens into US dollars (LLM_PRICES); a model
	// without a price costs 0. Default none.
	Prices ai.Prices

	// FIFO turns fairness off: within a priority a stage takes tickets in arrival
	// order, holding one waiting ticket per queue (docs/fairness.md). Default
	// false: users take turns.
	FIFO bool
	// FairWindow is how many tickets of each queue of a stage one process holds
	// at once, waiting their turn or in work, when users take turns or have a
	// cap. Default 1000.
	FairWindow int
	// UserConcurrency caps the jobs of one user in work at once in a stage,
	// across every process (0 or absent: no cap). Default: none.
	UserConcurrency map[events.Stage]int
}

// DefaultFairWindow is FairWindow's default.
const DefaultFairWindow = 1000

func (c Config) withDefaults() Config {
	def := map[events.Stage]int{
		events.StagePrompt: 32, events.StageDesign: 16, events.StageLatex: 16,
		events.StageFix: 8, events.StageCompile: runtime.NumCPU(), events.StageMeta: 4,
	}
	merged := make(map[events.Stage]int, len(def))
	for st, n := range def {
		merged[st] = n
		if v, ok := c.Concurrency[st]; ok && v != 0 {
			merged[st] = v
		}
	}
	c.Concurrency = merged
	if c.RetryBase == 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Minute
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.MetaAttempts == 0 {
		c.MetaAttempts = 4
	}
	if c.FairWindow == 0 {
		c.FairWindow = DefaultFairWindow
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

func (c Config) validate() error {
	var errs []error
	for st, n := range c.Concurrency {
		if !st.Runnable() {
			errs = append(errs, fmt.Errorf("concurrency: unknown stage %q", st))
		} else if n < 1 {
			errs = append(errs, fmt.Errorf("concurrency of %s is %d, must be at least 1", st, n))
		}
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("retry back-off %s..%s is not a positive range", c.RetryBase, c.RetryMax))
	}
	if c.AckWait < time.Second || c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("ack wait %s and lease %s must be at least 1s", c.AckWait, c.LeaseTTL))
	}
	if c.FairWindow < 1 {
		errs = append(errs, fmt.Errorf("fair window %d must be at least 1", c.FairWindow))
	}
	for st, n := range c.UserConcurrency {
		if !st.Runnable() || n < 0 {
			errs = append(errs, fmt.Errorf("user concurrency of %q is %d: want a stage and 0 or more", st, n))
		}
	}
	if c.MetaAttempts < 1 {
		errs = append(errs, fmt.Errorf("meta attempts %d must be at least 1", c.MetaAttempts))
	}
	return errors.Join(errs...)
}

// backoff is the delay before retry number n (1-based).
func (c Config) backoff(n int) time.Duration { return worker.Backoff(c.RetryBase, c.RetryMax, n) }
