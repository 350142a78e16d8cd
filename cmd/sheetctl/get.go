package main

import (
	"context"

	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var getCommand = &command{
	name:    "get",
	args:    "<job-id>",
	summary: "show a job: status, step, message, retries, priority, PDF, error, LLM usage",
	about: `Prints a summary of the job as stored now: status and step, message, retries,
priority, pdf_url, the error with its line and snippet when there is one, and the
LLM usage (tokens, calls and cost, in all and by step) and token budget. --json prints
the whole job (its fields plus "revision"); --latex prints only its LaTeX, e.g. to
edit it and send it back with: sheetctl edit <job-id> file.tex. Exits 3 if there
is no such job.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var latex bool
		fs.BoolVar(&latex, "latex", false, "print only the job's LaTeX")
		return func(ctx context.Context, args []string) error { return a.get(ctx, args, latex) }
	},
}

func (a *app) get(ctx context.Context, args []string, latex bool) error {
	if len(args) != 1 {
		return usageErr("get", "get needs one job id")
	}
	id, err := jobIDArg("get", args[0])
	if err != nil {
		return err
	}
	return a.withClient(func(c *client.Client) error {
		j, err := a.getJob(ctx, c, id)
		switch {
		case err != nil:
			return err
		case latex && j.Latex == "":
			return fmt.Errorf("job %s has no LaTeX yet (%s at %s)", id, j.Status, j.CurrentStep)
		case latex && a.opts.json:
			a.printJSON(struct {
				JobID    string `json:"job_id"`
				Revision uint64 `json:"revision"`
				Latex    string `json:"latex"`
			}{j.ID, j.Revision, j.Latex})
		case latex:
			io.WriteString(a.out, j.Latex)
			if !strings.HasSuffix(j.Latex, "\n") {
				fmt.Fprintln(a.out)
			}
		case a.opts.json:
			a.printJSON(j)
		default:
			printJob(a.out, j)
		}
		return nil
	})
}

// getJob fetches job id; an unknown job fails with the service's 404.
func (a *app) getJob(ctx context.Context, c *client.Client, id string) (*events.Versioned, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	j, err := c.Get(ctx, id)
	if err != nil {
		return nil, refused(err, "get job %s", id)
	}
	return j, nil
}

// printJob writes the human summary of j, one "field  value" line each.
func printJob(w io.Writer, j *events.Versioned) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(field, value string) {
		lines := strings.Split(strings.TrimRight(value, "\n"), "\n")
		fmt.Fprintf(tw, "%s\t%s\n", field, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t%s\n", l)
		}
	}
	line("job", j.ID)
	line("status", fmt.Sprintf("%s at %s (revision %d)", j.Status, j.CurrentStep, j.Revision))
	line("message", j.Message)
	line("user", j.UserID)
	line("prompt", j.Prompt)
	if j.RevisedPrompt != "" {
		line("revised", j.RevisedPrompt)
	}
	line("retries", fmt.Sprintf("%d/%d", j.RetryCount, j.MaxRetries))
	if j.Priority != "" {
		line("priority", string(j.Priority))
	}
	if j.PDFURL != "" {
		line("pdf_url", j.PDFURL)
	}
	if j.ErrorMessage != "" {
		e := events.ErrorInfo{Message: j.ErrorMessage}
		if j.ErrorLog != nil {
			e.Line, e.Snippet = j.ErrorLog.Line, j.ErrorLog.Snippet
		}
		line("error", errorText(&e))
		if strings.TrimSpace(e.Snippet) != "" {
			line("snippet", e.Snippet)
		}
	}
	if j.Description != "" {
		line("about", j.Description)
	}
	if u := j.Usage; u != nil {
		line("usage", usageText(u.Totals))
		for _, step := range []string{"refine", "design", "latex", "fix", "meta"} {
			if s, ok := u.Steps[step]; ok {
				line("  "+step, usageText(s))
			}
		}
	}
	if j.TokenBudget > 0 {
		line("budget", fmt.Sprintf("%d tokens (%d used since granted)", j.TokenBudget, j.TokensUsed()))
	}
	line("updated", fmt.Sprintf("%s (created %s)", localTime(j.UpdatedAt), localTime(j.CreatedAt)))
	tw.Flush()
}

func localTime(t time.Time) string { return t.Local().Format(time.DateTime) }

var listCommand = &command{
	name:    "list",
	args:    "",
	summary: "list jobs, newest first",
	about: `Prints a table of the jobs, newest first, filtered by --status and --user, at
most --limit of them (the service's default when 0, normally 50); --json prints one
job object per line. When more jobs match, a note on stderr says so.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var q events.ListQuery
		fs.Func("status", "only jobs in this `status` (pending, running, error, waiting_manual, waiting_ai_fix, completed, aborted)",
			func(s string) error { q.Status = events.Status(s); return nil })
		fs.StringVar(&q.UserID, "user", "", "only the jobs of this user_id")
		fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `n` jobs, 1..%d (default: the service's, normally %d)",
			events.MaxListLimit, events.DefaultListLimit))
		return func(ctx context.Context, args []string) error { return a.list(ctx, args, q) }
	},
}

func (a *app) list(ctx context.Context, args []string, q events.ListQuery) error {
	if len(args) != 0 {
		return usageErr("list", "list takes no arguments")
	}
	probe := q
	if err := probe.Validate(); err != nil {
		return usageErr("list", "%v", err)
	}
	return a.withClient(func(c *client.Client) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		reply, err := c.List(ctx, q)
		if err != nil {
			return refused(err, "list jobs")
		}
		a.printList(reply)
		return nil
	})
}

// printList writes the jobs as a table, or one JSON object per line.
func (a *app) printList(reply events.ListReply) {
	if reply.Truncated {
		defer fmt.Fprintf(a.err, "more jobs match; show more with --limit (at most %d)\n", events.MaxListLimit)
	}
	if a.opts.json {
		for _, j := range reply.Jobs {
			a.printJSON(j)
		}
		return
	}
	if len(reply.Jobs) == 0 {
		fmt.Fprintln(a.out, "no jobs")
		return
	}
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tSTATUS\tSTEP\tRETRIES\tUPDATED\tUSER\tPROMPT")
	for _, j := range reply.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.JobID, j.Status, j.Step,
			j.RetryCount, j.MaxRetries, localTime(j.UpdatedAt), j.UserID, shorten(j.Prompt, 40))
	}
	tw.Flush()
}

// shorten is s on one line, cut to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
