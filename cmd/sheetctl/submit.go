package main

import (
	"context"

	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var submitCommand = &command{
	name:    "submit",
	args:    `"prompt" | --file path | -`,
	summary: "submit a prompt; with --wait, follow the job and save its PDF",
	about: `Sends a job request to the control API (sheetpipe.submit) and prints the job
id once the service has stored the job. The prompt is the arguments (joined with
spaces), or the contents of --file; "-" (as --file or as the only argument) reads
standard input. An invalid request is refused before anything is created (exit 2);
resubmitting a --job-id with a different request is refused (exit 4).

With --wait it then prints a line per status change (date and time, status,
step, time since the job started, retries, message), a line when nothing changed
for a minute, and a last line saying how the job ended: when it completes it
writes <job_id>.pdf in the current directory ("completed in 14.2s after 1 AI fix:
PDF saved to ..."). It exits 1 if the job ends waiting_manual or aborted ("job
<id> waiting_manual at compile after 3 AI fixes: <error>" on stderr), or if
--timeout passes first (the job goes on; follow it with sheetctl watch <job_id>).`,
	setup: setupSubmit,
}

// submitFlags are submit's own flags.
type submitFlags struct {
	wait       bool
	user       string
	maxRetries *int
	mode       string
	priority   string
	dependsOn  []string
	webhookURL string
	jobID      string
	file       string
}

func setupSubmit(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
	var f submitFlags
	fs.BoolVar(&f.wait, "wait", false, "follow the job until it ends and save its PDF")
	fs.StringVar(&f.user, "user", defaultUser(a.getenv), "user_id of the request ($USER)")
	fs.Func("max-retries", fmt.Sprintf("retry budget `n`, 0..%d (default: the service's, normally %d)",
		events.MaxRetriesCap, events.DefaultMaxRetries), func(s string) error {
		n, err := strconv.Atoi(s)
		f.maxRetries = &n
		return err
	})
	fs.StringVar(&f.mode, "mode", "", "auto: the LLM repairs LaTeX that fails to compile; manual: stop for a human (default auto)")
	fs.StringVar(&f.priority, "priority", "", "high: overtakes queued normal jobs at every stage; low: waits for them (default normal)")
	fs.Func("depends-on", "`job_id` whose final LaTeX this job builds on; it waits until that job completes (repeat or comma-separate, up to 16)",
		func(s string) error {
			for _, id := range strings.Split(s, ",") {
				if id = strings.TrimSpace(id); id != "" {
					f.dependsOn = append(f.dependsOn, id)
				}
			}
			return nil
		})
	fs.StringVar(&f.webhookURL, "webhook-url", "", "URL that gets a signed POST of each final status of the job")
	fs.StringVar(&f.jobID, "job-id", "", "the job's id, a UUID (default: a new UUIDv4); resubmitting an id creates nothing new")
	fs.StringVar(&f.file, "file", "", "read the prompt from this file (- for standard input)")
	return func(ctx context.Context, args []string) error { return a.submit(ctx, f, args) }
}

func defaultUser(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return u
	}
	return "cli"
}

func (a *app) submit(ctx context.Context, f submitFlags, args []string) error {
	prompt, err := a.readPrompt(f.file, args)
	if err != nil {
		return err
	}
	req := events.JobRequest{JobID: f.jobID, UserID: f.user, Prompt: prompt, MaxRetries: f.maxRetries, Mode: f.mode,
		Priority: events.Priority(f.priority), DependsOn: f.dependsOn, WebhookURL: f.webhookURL}
	if err := checkRequest(&req); err != nil {
		return usageErr("submit", "%v", err)
	}
	return a.withClient(func(c *client.Client) error {
		if !f.wait {
			id, err := a.send(ctx, c, req)
			if err != nil {
				return err
			}
			a.printSubmitted(id, false)
			return nil
		}
		waitCtx, cancel := context.WithTimeout(ctx, a.opts.timeout)
		defer cancel()
		// Watching before submitting lets the replay of a new job's events start
		// at the end of JOB_EVENTS.
		ch, err := c.Watch(waitCtx, req.JobID)
		if err != nil {
			return fmt.Errorf("watch job %s: %w", req.JobID, err)
		}
		id, err := a.send(ctx, c, req)
		if err != nil {
			return err
		}
		a.printSubmitted(id, true)
		return a.await(ctx, waitCtx, c, id, ch)
	})
}

// checkRequest rejects, before anything is sent, a request the service would
// refuse, and gives it a job id (so a wait can start before the job exists).
func checkRequest(req *events.JobRequest) error {
	probe := *req
	if err := probe.Validate(events.DefaultMaxRetries); err != nil {
		return err
	}
	req.JobID = probe.JobID
	if req.JobID == "" {
		req.JobID = uuid.NewString()
	}
	return nil
}

func (a *app) send(ctx context.Context, c *client.Client, req events.JobRequest) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	id, err := c.Submit(ctx, req)
	if err != nil {
		return "", refused(err, "submit job %s", req.JobID)
	}
	return id, nil
}

// readPrompt returns the prompt from the arguments, from file, or from standard
// input for "-".
func (a *app) readPrompt(file string, args []string) (string, error) {
	switch {
	case file != "" && len(args) > 0:
		return "", usageErr("submit", "give the prompt as arguments or with --file, not both")
	case file == "-" || (file == "" && len(args) == 1 && args[0] == "-"):
		return readLimited(a.in, "standard input")
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("read prompt: %w", err)
		}
		defer f.Close()
		return readLimited(f, file)
	case len(args) == 0:
		return "", usageErr("submit", "missing prompt")
	}
	return strings.Join(args, " "), nil
}

// readLimited reads a prompt from r, without its surrounding white space. It stops
// reading at twice the size a prompt may have; checkRequest reports a size between.
func readLimited(r io.Reader, name string) (string, error) {
	const limit = 2 * events.MaxPromptBytes
	data, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return "", fmt.Errorf("read prompt from %s: %w", name, err)
	}
	if len(data) == limit {
		return "", usageErr("submit", "prompt from %s is longer than %d bytes", name, events.MaxPromptBytes)
	}
	return strings.TrimSpace(string(data)), nil
}
