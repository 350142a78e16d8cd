package api

import (
	"errors"
	"net/http"

	"github.com/sheetpipe/sheetpipe/events"
)

// Errors of the API itself; the pipeline's (events.ErrInvalid, ErrNotFound,
// ErrConflict...) keep the codes events.CodeOf gives them.
var (
	// ErrUnauthorized: the bearer token is missing or wrong (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoToken: /jobs is served on a public address without a token (403).
	ErrNoToken = errors.New("no API token configured")
	// ErrTooLarge: the request body is larger than Config.MaxBodyBytes (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrMethod: the route does not take the request's method (405).
	ErrMethod = errors.New("method not allowed")
	// ErrMediaType: a body's Content-Type is not one the operation reads (415).
	ErrMediaType = errors.New("unsupported content type")
	// ErrBusy: no worker became free within the request's deadline, or the service
	// is stopping (503).
	ErrBusy = errors.New("service busy")
)

// codeOf is the status code of a failed request: the API's own errors first,
// then events.CodeOf.
func codeOf(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrNoToken):
		return http.StatusForbidden
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	case events.AsStorage(err) != nil:
		return http.StatusInsufficientStorage
	}
	return events.CodeOf(err)
}

// messageOf is the text of a failed request's {"error"}: for a write refused
// for want of storage, "storage full: " and what the server said, whatever the
// operation wrapped around it.
func messageOf(err error) string {
	if se := events.AsStorage(err); se != nil {
		return se.Error()
	}
	return err.Error()
}
