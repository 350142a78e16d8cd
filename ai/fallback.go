package ai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// FailoverAfter is how many 5xx answers in a row from one model make a call
// ask the next model of its step's list: the first ones are retried like any
// transient failure (one overloaded moment), from this one on the model counts
// as failing and every call that meets a 5xx from it passes to the next.
const FailoverAfter = 3

// ModelsFor returns the models step asks, in order: its own (ModelFor), then
// its fallbacks (LLM_MODEL_<STEP>_FALLBACK, else LLM_MODEL_FALLBACK), without
// repeats. The offline provider has one model.
func (c *Client) ModelsFor(step string) []string {
	models := []string{c.ModelFor(step)}
	if c.cfg.Provider == ProviderOffline {
		return models
	}
	fallbacks, ok := c.cfg.StepFallbacks[step]
	if !ok {
		fallbacks = c.cfg.Fallbacks
	}
	for _, m := range fallbacks {
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	return models
}

// Available is nil while the provider answers, or ErrUnavailable with why not
// while the circuit breaker is open (breaker.go). The offline provider is
// always available.
func (c *Client) Available() error {
	if c.breaker == nil {
		return nil
	}
	return c.breaker.err()
}

// Hold is nil while the stages that ask the LLM should fetch work: the
// provider answers, or the open breaker's probe is due and no call waits to
// send it; else why not (ErrUnavailable). Calls in flight when the breaker
// opens wait inside the Client and probe for it; Hold lets new work in only
// when none is left to.
func (c *Client) Hold() error {
	if c.breaker == nil {
		return nil
	}
	return c.breaker.hold()
}

// send asks step's models in turn (tryModels) as one call of the circuit
// breaker. A call that finds the provider down while the breaker is open waits
// for the breaker's probe to find it up and is sent again, for as long as ctx
// lasts: an outage delays the call, it does not fail it.
func (c *Client) send(ctx context.Context, step string, msgs []openai.ChatCompletionMessage) (string, Usage, string, string, error) {
	for {
		probe, err := c.breaker.acquire(ctx)
		if err != nil {
			return "", Usage{}, "", "", classify(ctx, step, err)
		}
		r := c.tryModels(ctx, step, msgs)
		if ctx.Err() != nil {
			c.breaker.release(probe)
			return "", Usage{}, "", "", r.err
		}
		c.breaker.record(probe, r.down, reasonOf(r.err))
		if r.err != nil && r.down && c.breaker.isOpen() {
			continue
		}
		return r.answer, r.usage, r.model, r.fallback, r.err
	}
}

// tried is the outcome of one call through a list of models.
type tried struct {
	answer, model, fallback string
	usage                   Usage
	err                     error
	down                    bool // the last model asked found the provider down
}

// tryModels asks step's models (ModelsFor) in turn until one answers. A model
// is passed over for the next when it is unknown to the provider (404), when
// it asks for a wait longer than Config.MaxWait, or when it failed with a 5xx
// FailoverAfter times in a row; any other failure, or the last model's, ends
// the call. A wait within MaxWait is a *RateLimitedError; one beyond it with no
// model left is a plain transient failure.
func (c *Client) tryModels(ctx context.Context, step string, msgs []openai.ChatCompletionMessage) tried {
	models := c.ModelsFor(step)
	var passed []string
	for i, model := range models {
		actx, ans := withAnswer(ctx)
		text, usage, err := c.complete(actx, step, model, msgs)
		if err == nil {
			c.errs5xx.reset(model)
			return tried{answer: text, model: model, usage: usage, fallback: strings.Join(passed, "; ")}
		}
		status := ans.status
		down := errors.Is(err, ErrTransient) && (status == 0 || status >= http.StatusInternalServerError ||
			status == http.StatusRequestTimeout)
		var why string
		if hintStatus(status) {
			if wait, ok := ProviderWait(ans.header, time.Now()); ok {
				down = false
				if wait <= c.cfg.MaxWait {
					err = &RateLimitedError{Step: step, Model: model, Status: status, Wait: wait, Err: err}
				} else {
					why = fmt.Sprintf("rate limited for %s, more than LLM_MAX_WAIT (%s)", wait.Round(time.Millisecond), c.cfg.MaxWait)
					err = fmt.Errorf("%w (%s)", err, why)
				}
			}
		}
		switch {
		case status >= http.StatusInternalServerError && why == "" && !errors.As(err, new(*RateLimitedError)):
			if n := c.errs5xx.add(model); n >= FailoverAfter {
				why = fmt.Sprintf("%d server errors in a row (last %d)", n, status)
			}
		case status == http.StatusNotFound:
			why = "unknown model (404)"
		default:
			c.errs5xx.reset(model)
		}
		if why == "" || i == len(models)-1 || ctx.Err() != nil {
			return tried{err: err, down: down, model: model}
		}
		passed = append(passed, model+": "+why)
	}
	panic("unreachable: a step has at least one model")
}

// reasonOf is a failure's reason in the breaker's report.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// serverErrors counts each model's 5xx answers in a row.
type serverErrors struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *serverErrors) add(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[model]++
	return s.n[model]
}

func (s *serverErrors) reset(model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.n, model)
}
