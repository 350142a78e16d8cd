package client

import (
	"context"

	"github.com/sheetpipe/sheetpipe/events"
)

// Import sends one chunk of old records to the control API (sheetpipe.import)
// and returns one result per record, in order. A record that cannot be imported
// is refused in its result; the request fails only as a whole (no service, a
// body too large, code 400 for no records).
func (c *Client) Import(ctx context.Context, req events.ImportRequest) (events.ImportReply, error) {
	var reply events.ImportReply
	err := c.call(ctx, events.OpImport, req, &reply)
	return reply, err
}
