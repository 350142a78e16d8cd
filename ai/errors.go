package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	openai "github.com/sashabaranov/go-openai"
)

var (
	// ErrTransient marks a failure worth retrying later: rate limits (429), server
	// errors (5xx), the per-call timeout, network failures and empty or unreadable
	// answers.
	ErrTransient = errors.New("transient LLM failure")
	// ErrPermanent marks a failure that retrying will not fix: other 4xx answers
	// (bad key, unknown model, rejected request) and invalid input.
	ErrPermanent = errors.New("permanent LLM failure")
	// ErrInvalidConfig marks a Config that New rejects.
	ErrInvalidConfig = errors.New("invalid LLM config")
	// ErrUnavailable marks the provider as down: the circuit breaker is open
	// (breaker.go). Client.Available returns it.
	ErrUnavailable = errors.New("LLM provider unavailable")
)

// classify wraps err, returned by a call for step, with ErrTransient or
// ErrPermanent. When the caller's ctx has ended it wraps ctx.Err() instead, so
// errors.Is(err, context.Canceled) holds for a cancelled caller.
func classify(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("ai %s: %w", step, ctxErr)
	}
	kind := ErrPermanent
	if isTransient(err) {
		kind = ErrTransient
	}
	return fmt.Errorf("ai %s: %w: %w", step, kind, err)
}

func isTransient(err error) bool {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return transientStatus(apiErr.HTTPStatusCode)
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return transientStatus(reqErr.HTTPStatusCode)
	}
	var (
		netErr    net.Error
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &syntaxErr),
		errors.As(err, &typeErr):
		return true
	}
	return false
}

// transientStatus reports whether an HTTP error status is worth retrying.
func transientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError ||
		code == http.StatusRequestTimeout
}

// transient returns an ErrTransient error for step with the given reason.
func transient(step, reason string) error {
	return fmt.Errorf("ai %s: %w: %s", step, ErrTransient, reason)
}

// permanent returns an ErrPermanent error for step with the given reason.
func permanent(step, reason string) error {
	return fmt.Errorf("ai %s: %w: %s", step, ErrPermanent, reason)
}
