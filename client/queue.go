package client

import (
	"context"

	"github.com/sheetpipe/sheetpipe/events"
)

// Queue reports the unfinished jobs against the queue limits (sheetpipe.queue):
// in total, of userID when it is not empty, and the users with the most as of
// the answering sheetd's last recount.
func (c *Client) Queue(ctx context.Context, userID string) (events.QueueReply, error) {
	var reply events.QueueReply
	err := c.call(ctx, events.OpQueue, events.QueueQuery{UserID: userID}, &reply)
	return reply, err
}
