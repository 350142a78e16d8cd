package api

import (
	"context"
	"fmt"

	"github.com/sheetpipe/sheetpipe/events"
)

// importer is what sheetpipe.import needs of the control plane; *control.Plane
// implements it.
type importer interface {
	Import(ctx context.Context, req events.ImportRequest) (events.ImportReply, error)
}

// The import operation is registered from here so that it stays beside its
// handler.
func init() { endpoints = append(endpoints, importEndpoint) }

var importEndpoint = endpoint{events.OpImport,
	"import a chunk of the old pipeline's JSON store: jobs with their conversations and PDFs (sheetctl import)",
	`{"records": [{"source"?, "job": old job, "conversation"?: old conversation, "pdf"?: base64, "pdf_note"?}, 1..500], "dry_run"?, "overwrite"?, "recompile_missing"?}`,
	`{"dry_run"?, "results": [{"job_id", "source"?, "outcome": "imported"|"resumed"|"skipped"|"refused", "old_status", "status", "step", "stage"?, "reason"?, "note"?, "overwritten"?}]}`,
	"400 bad body or no records; a bad record is refused in its result, not as an error",
	func(a *API, ctx context.Context, data []byte) (any, string, error) {
		imp, ok := a.ctl.(importer)
		if !ok {
			return nil, "", fmt.Errorf("%w: this service does not import", events.ErrInvalid)
		}
		var req events.ImportRequest
		if err := events.DecodeControl(data, &req); err != nil {
			return nil, "", err
		}
		reply, err := imp.Import(ctx, req)
		return reply, "", err
	}}
