package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var queueCommand = &command{
	name:    "queue",
	args:    "",
	summary: "show the unfinished jobs against the queue limits, in total and per user",
	about: `Prints the jobs not yet finished (in total and, with --user, of that user) beside
their limits, SHEETPIPE_MAX_QUEUED and SHEETPIPE_MAX_QUEUED_PER_USER: a submission
that would pass a limit is refused with "queue full". Then the users with the most
unfinished jobs, as of the answering sheetd's last recount (SHEETPIPE_QUEUE_RECOUNT).
--json prints the service's reply {"queued", "max_queued", "max_queued_per_user",
"user"?: {"user_id", "queued"}, "top": [{"user_id", "queued"}], "top_as_of"}.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var user string
		fs.StringVar(&user, "user", "", "also show the unfinished jobs of this `user_id`")
		return func(ctx context.Context, args []string) error { return a.queue(ctx, args, user) }
	},
}

func (a *app) queue(ctx context.Context, args []string, user string) error {
	if len(args) != 0 {
		return usageErr("queue", "queue takes no arguments; name a user with --user")
	}
	if len(user) > events.MaxUserIDLen {
		return usageErr("queue", "--user is longer than %d bytes", events.MaxUserIDLen)
	}
	return a.withClient(func(c *client.Client) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		q, err := c.Queue(ctx, user)
		if err != nil {
			return refused(err, "read the queue")
		}
		if a.opts.json {
			a.printJSON(q)
		} else {
			printQueue(a.out, q)
		}
		return nil
	})
}

// printQueue writes the human view of q.
func printQueue(out io.Writer, q events.QueueReply) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "unfinished\t%d of %s\n", q.Queued, limitText(q.Max))
	if q.User != nil {
		fmt.Fprintf(w, "user %s\t%d of %s\n", events.Quoted(q.User.UserID), q.User.Queued, limitText(q.MaxPerUser))
	}
	w.Flush()
	if len(q.Top) == 0 {
		fmt.Fprintln(out, "no user has unfinished jobs (as of the last recount)")
		return
	}
	fmt.Fprintf(out, "\nusers with the most unfinished jobs (as of %s):\n", q.TopAsOf)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RANK\tUSER\tUNFINISHED")
	for i, u := range q.Top {
		fmt.Fprintf(w, "%d\t%s\t%d\n", i+1, events.Quoted(u.UserID), u.Queued)
	}
	w.Flush()
}

func limitText(max int64) string {
	if max < 0 {
		return "no limit"
	}
	return fmt.Sprint(max)
}
