package main

import (
	"context"

	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var batchCommand = &command{
	name:    "batch",
	args:    "<file.jsonl | -> | get <batch-id> | watch <batch-id>",
	summary: "submit many requests from a file (one JSON request per line); show or follow a batch",
	about: `sheetctl batch <file.jsonl | -> sends every request of the file ("-" reads
standard input), one JSON job request per line ({"user_id", "prompt", ...}; blank
lines are skipped; a line without user_id gets --user), as one batch
(sheetpipe.batch). A bad line is reported with its number and nothing is
submitted (exit 2). It prints the batch id, then the job ids in the file's order.
Run it again with the same --batch-id after a failure: the service creates only
the jobs still missing and returns the same ids; other jobs under that id are
refused (exit 4).

With --wait, and for sheetctl batch watch <batch-id>, it prints a line per change
of one of the batch's jobs (date and time, time since the wait started, counts
per status), until every job has ended; --wait then writes the PDF of every
completed job to <job_id>.pdf in the current directory, a line each. It exits
0 when all completed, 1 when some ended otherwise (they are listed) or when
--timeout passes first (the jobs go on). sheetctl batch get <batch-id> prints
the batch's status: counts per status and each job's. An unknown batch exits 3.`,
	setup: setupBatch,
}

// batchFlags are batch's own flags.
type batchFlags struct {
	wait    bool
	batchID string
	user    string
}

func setupBatch(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
	var f batchFlags
	fs.BoolVar(&f.wait, "wait", false, "follow the batch until every job has ended and save the PDF of each completed job (exit 1 unless all completed)")
	fs.StringVar(&f.batchID, "batch-id", "", "the batch's id, a UUID (default: a new UUIDv4); sending it again creates only what is missing")
	fs.StringVar(&f.user, "user", defaultUser(a.getenv), "user_id of the lines that have none ($USER)")
	return func(ctx context.Context, args []string) error { return a.batch(ctx, f, args) }
}

func (a *app) batch(ctx context.Context, f batchFlags, args []string) error {
	switch {
	case len(args) == 2 && (args[0] == "get" || args[0] == "watch"):
		if f.wait || f.batchID != "" {
			return usageErr("batch", "--wait and --batch-id are for submitting a batch, not batch %s", args[0])
		}
		id, err := batchIDArg(args[1])
		if err != nil {
			return err
		}
		if args[0] == "get" {
			return a.withClient(func(c *client.Client) error { return a.batchGet(ctx, c, id) })
		}
		return a.withClient(func(c *client.Client) error { return a.batchWatch(ctx, c, id, false) })
	case len(args) == 1 && args[0] != "get" && args[0] != "watch":
		return a.batchSubmit(ctx, f, args[0])
	}
	return usageErr("batch", "batch needs a file, or get or watch and a batch id")
}

func batchIDArg(arg string) (string, error) {
	id, err := events.BatchIDOf(arg)
	if err != nil {
		return "", usageErr("batch", "batch id %q is not a UUID", arg)
	}
	return id, nil
}

// maxBatchFile bounds a batch file: every request at the largest prompt.
const maxBatchFile = events.MaxBatchJobs * 2 * events.MaxPromptBytes

func (a *app) batchSubmit(ctx context.Context, f batchFlags, path string) error {
	// Chosen here when not given, so that the batch can be sent again after a
	// failure.
	batchID := uuid.NewString()
	if f.batchID != "" {
		var err error
		if batchID, err = batchIDArg(f.batchID); err != nil {
			return err
		}
	}
	b, err := a.readBatch(path, f.user)
	if err != nil {
		return err
	}
	b.BatchID = batchID
	return a.withClient(func(c *client.Client) error {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		reply, err := c.SubmitBatch(reqCtx, b)
		cancel()
		if err != nil {
			return refused(err, "submit batch %s (send it again with --batch-id %s)", b.BatchID, b.BatchID)
		}
		switch {
		case a.opts.json:
			a.printJSON(reply)
		case f.wait:
			fmt.Fprintf(a.out, "batch %s submitted: %d jobs\n", reply.BatchID, len(reply.JobIDs))
		default:
			fmt.Fprintln(a.out, reply.BatchID)
			for _, id := range reply.JobIDs {
				fmt.Fprintln(a.out, id)
			}
		}
		if !f.wait {
			return nil
		}
		return a.batchWatch(ctx, c, reply.BatchID, true)
	})
}

// readBatch reads the requests of a batch file ("-": standard input), one per
// line; a line without user_id gets user. A bad line is a usage error naming it.
func (a *app) readBatch(path, user string) (events.BatchRequest, error) {
	r, name := a.in, "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return events.BatchRequest{}, fmt.Errorf("read batch: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBatchFile+1))
	switch {
	case err != nil:
		return events.BatchRequest{}, fmt.Errorf("read batch from %s: %w", name, err)
	case len(data) > maxBatchFile:
		return events.BatchRequest{}, usageErr("batch", "%s is longer than %d bytes", name, maxBatchFile)
	}
	b, err := events.DecodeBatchLines(data)
	if err == nil {
		for i := range b.Jobs {
			if b.Jobs[i].UserID == "" {
				b.Jobs[i].UserID = user
			}
		}
		err = b.Validate(events.DefaultMaxRetries)
	}
	if err != nil {
		return b, usageErr("batch", "%s: %s", name, strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": "))
	}
	return b, nil
}

// batchGet prints the batch's status.
func (a *app) batchGet(ctx context.Context, c *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := c.Batch(ctx, id)
	if err != nil {
		return refused(err, "get batch %s", id)
	}
	if a.opts.json {
		a.printJSON(s)
		return nil
	}
	printBatch(a.out, s)
	return nil
}

// batchWatch follows the batch until every job has ended (bounded by --timeout)
// and fails unless all completed; with save it first writes the PDF of every
// completed job.
func (a *app) batchWatch(ctx context.Context, c *client.Client, id string, save bool) error {
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, a.opts.timeout)
	defer cancel()
	ch, err := c.WatchBatch(waitCtx, id)
	if err != nil {
		return refused(err, "watch batch %s", id)
	}
	last, err := a.followBatch(waitCtx, id, ch)
	if err != nil {
		return err
	}
	saved := 0
	if save {
		if saved, err = a.saveBatchPDFs(ctx, c, last); err != nil {
			return err
		}
	}
	return a.batchOutcome(last, time.Since(start), saved)
}
