package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var usageCommand = &command{
	name:    "usage",
	args:    "--user <user-id>",
	summary: "a user's LLM usage over a period: tokens, calls, cost",
	about: `Prints what the user's jobs spent on the LLM from --since to --until (days,
YYYY-MM-DD or RFC 3339, in UTC, both included; by default the 30 days up to
today): prompt and completion tokens, paid calls and their cost in US dollars at
the service's LLM_PRICES. --json prints the service's reply.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var q events.UsageQuery
		fs.StringVar(&q.UserID, "user", "", "the user id (required)")
		fs.StringVar(&q.Since, "since", "", "first day (default: 29 days before --until)")
		fs.StringVar(&q.Until, "until", "", "last day (default: today, UTC)")
		return func(ctx context.Context, args []string) error { return a.usage(ctx, args, q) }
	},
}

func (a *app) usage(ctx context.Context, args []string, q events.UsageQuery) error {
	switch {
	case len(args) != 0:
		return usageErr("usage", "usage takes no arguments; name the user with --user")
	case q.UserID == "":
		return usageErr("usage", "usage needs --user <user-id>")
	}
	return a.withClient(func(c *client.Client) error {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		u, err := c.Usage(reqCtx, q)
		if err != nil {
			return refused(err, "usage of user %s", q.UserID)
		}
		if a.opts.json {
			a.printJSON(u)
			return nil
		}
		tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "user\t%s\n", u.UserID)
		fmt.Fprintf(tw, "period\t%s to %s (UTC)\n", u.Since, u.Until)
		fmt.Fprintf(tw, "usage\t%s\n", usageText(u.Totals))
		return tw.Flush()
	})
}

// usageText is one line of LLM usage: tokens in and out, calls, cost.
func usageText(t events.Totals) string {
	return fmt.Sprintf("%d tokens (%d prompt, %d completion), %d calls, $%.6f",
		t.Tokens(), t.PromptTokens, t.CompletionTokens, t.Calls, t.CostUSD)
}
