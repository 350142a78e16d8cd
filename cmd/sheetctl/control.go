package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// The commands that change a job through the control API. Each prints the job as
// the change left it ("job <id> <status> at <step>: <message>", or its JSON); with
// --wait it instead follows the run the change started, as submit --wait does.

const waitUsage = "follow the job until it ends and save its PDF (exit 1 if it ends waiting_manual or aborted)"

var editCommand = &command{
	name:    "edit",
	args:    "<job-id> <file.tex | ->",
	summary: "replace a job's LaTeX with a file's and compile it",
	about: `Sends the file's LaTeX ("-" reads standard input) as the job's new LaTeX and
compiles it; a compile failure then waits for you (waiting_manual) rather than for
the LLM. Get the current LaTeX with: sheetctl get --latex <job-id> > file.tex.
Not allowed while the job is running or after it was aborted (exit 4).`,
	setup: func(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		return func(ctx context.Context, args []string) error { return a.edit(ctx, args, *wait) }
	},
}

var retryCommand = &command{
	name:    "retry",
	args:    "<job-id>",
	summary: "run a failed job's step again with a fresh retry budget",
	about:   "Allowed when the job is in error or waiting_manual (else exit 4).",
	setup: func(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		return func(ctx context.Context, args []string) error { return a.retry(ctx, args, *wait) }
	},
}

var refineCommand = &command{
	name:    "refine",
	args:    `<job-id> "instruction"`,
	summary: "revise a job with an instruction and generate it again",
	about: `Adds the instruction (the arguments after the job id, joined with spaces) to the
job's conversation, revises the request with it and regenerates design, LaTeX and
PDF. Allowed when the job is completed, in error or waiting_manual (else exit 4).`,
	setup: func(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		return func(ctx context.Context, args []string) error { return a.refine(ctx, args, *wait) }
	},
}

var abortCommand = &command{
	name:    "abort",
	args:    "<job-id>",
	summary: "stop a job for good",
	about: `The job becomes aborted (final); work in flight for it is cancelled and its
results discarded. A completed or aborted job cannot be aborted (exit 4).`,
	setup: func(a *app, _ *flag.FlagSet) func(context.Context, []string) error {
		return a.abort
	},
}

func (a *app) edit(ctx context.Context, args []string, wait bool) error {
	if len(args) != 2 {
		return usageErr("edit", "edit needs a job id and a file")
	}
	id, err := jobIDArg("edit", args[0])
	if err != nil {
		return err
	}
	latex, err := a.readLatex(args[1])
	if err != nil {
		return err
	}
	if err := (&events.LatexEdit{JobID: id, Latex: latex}).Validate(); err != nil {
		return usageErr("edit", "%v", err)
	}
	return a.change(ctx, "edit the LaTeX of", id, wait, func(ctx context.Context, c *client.Client) (*kvstore.Versioned, error) {
		return c.EditLatex(ctx, id, latex)
	})
}

// readLatex reads a LaTeX file, or standard input for "-", stopping just past the
// size an edit may have (which LatexEdit.Validate then reports).
func (a *app) readLatex(path string) (string, error) {
	r, name := a.in, "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("read LaTeX: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	data, err := io.ReadAll(io.LimitReader(r, events.MaxLatexBytes+1))
	if err != nil {
		return "", fmt.Errorf("read LaTeX from %s: %w", name, err)
	}
	return string(data), nil
}

func (a *app) retry(ctx context.Context, args []string, wait bool) error {
	if len(args) != 1 {
		return usageErr("retry", "retry needs one job id")
	}
	id, err := jobIDArg("retry", args[0])
	if err != nil {
		return err
	}
	return a.change(ctx, "retry", id, wait, func(ctx context.Context, c *client.Client) (*kvstore.Versioned, error) {
		return c.Retry(ctx, id)
	})
}

func (a *app) refine(ctx context.Context, args []string, wait bool) error {
	if len(args) < 2 {
		return usageErr("refine", "refine needs a job id and an instruction")
	}
	id, err := jobIDArg("refine", args[0])
	if err != nil {
		return err
	}
	r := events.Refinement{JobID: id, Instruction: strings.Join(args[1:], " ")}
	if err := r.Validate(); err != nil {
		return usageErr("refine", "%v", err)
	}
	return a.change(ctx, "refine", id, wait, func(ctx context.Context, c *client.Client) (*kvstore.Versioned, error) {
		return c.Refine(ctx, id, r.Instruction)
	})
}

func (a *app) abort(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("abort", "abort needs one job id")
	}
	id, err := jobIDArg("abort", args[0])
	if err != nil {
		return err
	}
	return a.change(ctx, "abort", id, false, func(ctx context.Context, c *client.Client) (*kvstore.Versioned, error) {
		return c.Abort(ctx, id)
	})
}

// change runs one control request on job id and reports the job it left, or
// with wait follows the run it started from the revision it returned.
func (a *app) change(ctx context.Context, what, id string, wait bool,
	op func(context.Context, *client.Client) (*kvstore.Versioned, error)) error {
	return a.withClient(func(c *client.Client) error {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		j, err := op(reqCtx, c)
		cancel()
		if err != nil {
			return refused(err, "%s job %s", what, id)
		}
		if !wait {
			a.printChanged(j)
			return nil
		}
		return a.waitFor(ctx, c, id, j.Revision)
	})
}
