package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
)

// A change over HTTP (latex, retry, refine, abort) may name the revision it is
// based on in the If-Match header, in the body's if_revision, or in both when
// they agree. GET /jobs/{id} and every change answer the job with ETag
// "<revision>", so an HTTP client sends back what it read.

// etag is the ETag of a job at rev: the revision, quoted.
func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// ifMatch reads the If-Match header: a revision, bare (12) or as the ETag
// ("12"). No header, or "*" (whatever the job's revision), is nil.
func ifMatch(r *http.Request) (*uint64, error) {
	vals := r.Header.Values("If-Match")
	switch {
	case len(vals) == 0:
		return nil, nil
	case len(vals) > 1:
		return nil, fmt.Errorf("%w: %d If-Match headers; send one with the job's revision", events.ErrInvalid, len(vals))
	}
	v := strings.TrimSpace(vals[0])
	if v == "*" {
		return nil, nil
	}
	num := v
	if len(num) >= 2 && num[0] == '"' && num[len(num)-1] == '"' {
		num = num[1 : len(num)-1]
	}
	rev, err := strconv.ParseUint(num, 10, 64)
	if err != nil || rev == 0 {
		return nil, fmt.Errorf(`%w: If-Match %q is not a job revision; send the revision the change is based on, as 12 or as the ETag GET /jobs/{id} answers ("12")`,
			events.ErrInvalid, v)
	}
	return &rev, nil
}

// baseRevision is the revision a change is based on: If-Match's, body's
// (if_revision), or nil when neither gives one. Both given must agree.
func baseRevision(r *http.Request, body *uint64) (*uint64, error) {
	header, err := ifMatch(r)
	switch {
	case err != nil:
		return nil, err
	case header == nil:
		return body, nil
	case body != nil && *body != *header:
		return nil, fmt.Errorf("%w: If-Match names revision %d but if_revision in the body %d; send one of them, or the same in both",
			events.ErrInvalid, *header, *body)
	}
	return header, nil
}
