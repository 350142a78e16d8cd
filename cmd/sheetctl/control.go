package main

import (
	"context"
	"errors"

	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

// The commands that change a job through the control API. Each prints the job as
// the change left it ("job <id> <status> at <step>: <message>", or its JSON); with
// --wait it instead follows the run the change started, as submit --wait does.

const waitUsage = "follow the job until it ends and save its PDF (exit 1 if it ends waiting_manual or aborted)"

// revisionUsage documents --revision, which every change takes.
const revisionUsage = "make the change only if the job is still at revision `n` (as sheetctl get shows it); else exit 4"

// basis is the revision a change is based on: rev when given (--revision), else
// the one read just before the change when read is set (edit without --force),
// else none.
type basis struct {
	rev  uint64
	read bool
}

// revisionFlag registers --revision on fs, storing a revision of at least 1.
func revisionFlag(fs *pflag.FlagSet, b *basis) {
	fs.Func("revision", revisionUsage, func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return errors.New("not a revision (a whole number from 1)")
		}
		b.rev = n
		return nil
	})
}

var editCommand = &command{
	name:    "edit",
	args:    "<job-id> <file.tex | ->",
	summary: "replace a job's LaTeX with a file's and compile it",
	about: `Sends the file's LaTeX ("-" reads standard input) as the job's new LaTeX and
compiles it; a compile failure then waits for you (waiting_manual) rather than for
the LLM. Get the current LaTeX with: sheetctl get --latex <job-id> > file.tex.
Not allowed while the job is running or after it was aborted (exit 4).

No edit is lost: edit reads the job's revision and the service makes the edit only
if the job is still at it, so an edit racing another change is refused (exit 4:
the job changed since; read it again). --revision bases the edit on the revision
you read the LaTeX at (sheetctl get shows it; get --latex --json prints it), so a
change since then is refused too; --force replaces the LaTeX whatever changed.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		force := fs.Bool("force", false, "replace the LaTeX even if the job changed since it was read")
		var b basis
		revisionFlag(fs, &b)
		return func(ctx context.Context, args []string) error {
			if *force && b.rev != 0 {
				return usageErr("edit", "--force and --revision exclude each other")
			}
			b.read = !*force && b.rev == 0
			return a.edit(ctx, args, *wait, b)
		}
	},
}

var retryCommand = &command{
	name:    "retry",
	args:    "<job-id>",
	summary: "run a failed job's step again with a fresh retry budget",
	about:   "Allowed when the job is in error or waiting_manual (else exit 4).",
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		var b basis
		revisionFlag(fs, &b)
		return func(ctx context.Context, args []string) error { return a.retry(ctx, args, *wait, b) }
	},
}

var refineCommand = &command{
	name:    "refine",
	args:    `<job-id> "instruction"`,
	summary: "revise a job with an instruction and generate it again",
	about: `Adds the instruction (the arguments after the job id, joined with spaces) to the
job's conversation, revises the request with it and regenerates design, LaTeX and
PDF. Allowed when the job is completed, in error or waiting_manual (else exit 4).`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		wait := fs.Bool("wait", false, waitUsage)
		var b basis
		revisionFlag(fs, &b)
		return func(ctx context.Context, args []string) error { return a.refine(ctx, args, *wait, b) }
	},
}

var abortCommand = &command{
	name:    "abort",
	args:    "<job-id>",
	summary: "stop a job for good",
	about: `The job becomes aborted (final); work in flight for it is cancelled and its
results discarded. A completed or aborted job cannot be aborted (exit 4).`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var b basis
		revisionFlag(fs, &b)
		return func(ctx context.Context, args []string) error { return a.abort(ctx, args, b) }
	},
}

func (a *app) edit(ctx context.Context, args []string, wait bool, b basis) error {
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
	return a.change(ctx, "edit the LaTeX of", id, wait, b, func(ctx context.Context, c *client.Client, o ...client.ChangeOption) (*events.Versioned, error) {
		return c.EditLatex(ctx, id, latex, o...)
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

func (a *app) retry(ctx context.Context, args []string, wait bool, b basis) error {
	if len(args) != 1 {
		return usageErr("retry", "retry needs one job id")
	}
	id, err := jobIDArg("retry", args[0])
	if err != nil {
		return err
	}
	return a.change(ctx, "retry", id, wait, b, func(ctx context.Context, c *client.Client, o ...client.ChangeOption) (*events.Versioned, error) {
		return c.Retry(ctx, id, o...)
	})
}

func (a *app) refine(ctx context.Context, args []string, wait bool, b basis) error {
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
	return a.change(ctx, "refine", id, wait, b, func(ctx context.Context, c *client.Client, o ...client.ChangeOption) (*events.Versioned, error) {
		return c.Refine(ctx, id, r.Instruction, o...)
	})
}

func (a *app) abort(ctx context.Context, args []string, b basis) error {
	if len(args) != 1 {
		return usageErr("abort", "abort needs one job id")
	}
	id, err := jobIDArg("abort", args[0])
	if err != nil {
		return err
	}
	return a.change(ctx, "abort", id, false, b, func(ctx context.Context, c *client.Client, o ...client.ChangeOption) (*events.Versioned, error) {
		return c.Abort(ctx, id, o...)
	})
}

// change runs one control request on job id, based on the revision b names, and
// reports the job it left, or with wait follows the run it started from the
// revision it returned.
func (a *app) change(ctx context.Context, what, id string, wait bool, b basis,
	op func(context.Context, *client.Client, ...client.ChangeOption) (*events.Versioned, error)) error {
	return a.withClient(func(c *client.Client) error {
		rev := b.rev
		if b.read {
			j, err := a.getJob(ctx, c, id)
			if err != nil {
				return err
			}
			rev = j.Revision
			if a.beforeChange != nil {
				a.beforeChange()
			}
		}
		var opts []client.ChangeOption
		if rev != 0 {
			opts = append(opts, client.IfRevision(rev))
		}
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		j, err := op(reqCtx, c, opts...)
		cancel()
		if errors.Is(err, events.ErrStale) {
			return staleChange(err, what, id, rev, b.read)
		}
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

// staleError is a change the service refused because the job changed since the
// revision it was based on; it matches what it wraps (a 409: exit 4).
type staleError struct {
	msg string
	err error
}

func (e *staleError) Error() string { return e.msg }
func (e *staleError) Unwrap() error { return e.err }

// staleChange says what to do about a change refused as stale: read the job
// again; an edit based on the revision sheetctl read itself can also be forced.
func staleChange(err error, what, id string, rev uint64, read bool) error {
	since := fmt.Sprintf("revision %d", rev)
	if read {
		since = fmt.Sprintf("it was read (revision %d)", rev)
	}
	msg := fmt.Sprintf("cannot %s job %s: it changed since %s and is at revision %d now; nothing was changed.\n", what, id, since, events.RevisionOf(err))
	if what == "edit the LaTeX of" {
		msg += fmt.Sprintf("Read it again (sheetctl get --latex %s) and edit that, or pass --force to replace its LaTeX anyway.", id)
	} else {
		msg += fmt.Sprintf("Read it again (sheetctl get %s) and decide again.", id)
	}
	return &staleError{msg: msg, err: err}
}
