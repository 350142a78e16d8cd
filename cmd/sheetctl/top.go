package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var topCommand = &command{
	name:    "top",
	args:    "",
	summary: "a live view of the stages' queues, running jobs, failures and recent jobs",
	about: `Shows the pipeline at a glance and redraws it every --interval (default 1s)
until interrupted: jobs by status, each stage's queue per priority (tickets
waiting and in flight), the running jobs by step, the latest failures and the
most recent jobs. The figures come from sheetd's HTTP API (GET /stats, at --api
with --api-token), the recent jobs from the control API over NATS; when one of
them cannot be read the frame says why and the rest is shown.

--once prints one frame and exits (exit 1 when neither source answers); with
--json each frame is one JSON object {"time", "stats", "recent"} on a line.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var f topFlags
		fs.BoolVar(&f.once, "once", false, "print one frame and exit")
		fs.DurationVar(&f.interval, "interval", time.Second, "time between frames")
		fs.IntVar(&f.recent, "recent", 10, fmt.Sprintf("show the `n` most recent jobs, 1..%d", events.MaxListLimit))
		return func(ctx context.Context, args []string) error { return a.top(ctx, f, args) }
	},
}

type topFlags struct {
	once     bool
	interval time.Duration
	recent   int
}

// topFrame is what one frame shows.
type topFrame struct {
	Time        time.Time           `json:"time"`
	Stats       *events.Overview    `json:"stats,omitempty"`
	StatsError  string              `json:"stats_error,omitempty"`
	Recent      []events.JobSummary `json:"recent"`
	RecentError string              `json:"recent_error,omitempty"`
}

func (a *app) top(ctx context.Context, f topFlags, args []string) error {
	switch {
	case len(args) != 0:
		return usageErr("top", "top takes no arguments")
	case f.interval < 100*time.Millisecond:
		return usageErr("top", "--interval %s is shorter than 100ms", f.interval)
	case f.recent < 1 || f.recent > events.MaxListLimit:
		return usageErr("top", "--recent %d is outside 1..%d", f.recent, events.MaxListLimit)
	}
	api, err := url.Parse(a.opts.api)
	if err != nil || (api.Scheme != "http" && api.Scheme != "https") || api.Host == "" {
		return usageErr("top", "--api %q is not an http(s) URL", a.opts.api)
	}
	nc, c, connErr := a.connect()
	if connErr == nil {
		defer nc.Close()
	}
	httpc := &http.Client{Timeout: requestTimeout}
	clear := !f.once && !a.opts.json && isTerminal(a.out)
	for {
		fr := a.topFrame(ctx, httpc, api, c, connErr, f.recent)
		if f.once && fr.Stats == nil && fr.Recent == nil {
			return fmt.Errorf("top: %s; %s", fr.StatsError, fr.RecentError)
		}
		switch {
		case a.opts.json:
			a.printJSON(fr)
		case clear:
			fmt.Fprint(a.out, "\x1b[H\x1b[2J")
			fallthrough
		default:
			printTop(a.out, fr, !f.once)
		}
		if f.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
		if !clear && !a.opts.json {
			fmt.Fprintln(a.out)
		}
	}
}

// topFrame reads the stats and the recent jobs.
func (a *app) topFrame(ctx context.Context, httpc *http.Client, api *url.URL, c *client.Client, connErr error, recent int) topFrame {
	fr := topFrame{Time: time.Now()}
	o, err := a.fetchStats(ctx, httpc, api)
	if err != nil {
		fr.StatsError = err.Error()
	} else {
		fr.Stats = &o
	}
	if connErr != nil {
		fr.RecentError = connErr.Error()
		return fr
	}
	reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reply, err := c.List(reqCtx, events.ListQuery{Limit: recent})
	if err != nil {
		fr.RecentError = fmt.Sprintf("list jobs: %v", err)
		return fr
	}
	fr.Recent = reply.Jobs
	if fr.Recent == nil {
		fr.Recent = []events.JobSummary{}
	}
	return fr
}

// fetchStats reads GET <api>/stats with the token.
func (a *app) fetchStats(ctx context.Context, httpc *http.Client, api *url.URL) (events.Overview, error) {
	u := api.JoinPath("stats")
	where := u.Redacted()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return events.Overview{}, fmt.Errorf("stats from %s: %w", where, err)
	}
	if a.opts.apiToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.opts.apiToken)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return events.Overview{}, fmt.Errorf("stats from %s: %w (is sheetd's HTTP API there? --api)", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return events.Overview{}, fmt.Errorf("stats from %s: %w", where, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e events.ErrorReply
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (--api-token, or a context's)"
		}
		return events.Overview{}, fmt.Errorf("stats from %s: %s: %s", where, resp.Status, shorten(msg, 200))
	}
	var o events.Overview
	if err := json.Unmarshal(body, &o); err != nil {
		return events.Overview{}, fmt.Errorf("stats from %s: %w", where, err)
	}
	return o, nil
}

// printTop writes one frame for people.
func printTop(w io.Writer, fr topFrame, live bool) {
	head := "sheetpipe at " + dateTime(fr.Time)
	if live {
		head += " (sheetctl top; Ctrl-C to stop)"
	}
	fmt.Fprintln(w, head)
	if fr.Stats == nil {
		fmt.Fprintf(w, "\nstats: %s\n", fr.StatsError)
	} else {
		o := fr.Stats
		fmt.Fprintf(w, "jobs %d: %s\n", o.Jobs, countsText(o.Statuses))
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STAGE\tPRIORITY\tWAITING\tIN FLIGHT\tRUNNING")
		running := map[string]int{}
		for _, r := range o.Running {
			running[string(r.Step)+"/"+string(r.Priority)] += r.Running
		}
		for _, q := range o.Queues {
			load := fmt.Sprintf("%d\t%d", q.Waiting, q.InFlight)
			if q.Error != "" {
				load = "?\t?"
			}
			// Running counts are by step: a stage that is no step (prompt, fix,
			// meta) has none of its own; a fix runs at step compile.
			run := "-"
			switch q.Stage {
			case events.StageDesign, events.StageLatex, events.StageCompile:
				run = "0"
			}
			if n, ok := running[string(q.Stage)+"/"+string(q.Priority)]; ok {
				run = fmt.Sprint(n)
				delete(running, string(q.Stage)+"/"+string(q.Priority))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", q.Stage, q.Priority, load, run)
		}
		tw.Flush()
		var other []string
		for _, r := range o.Running {
			if n, ok := running[string(r.Step)+"/"+string(r.Priority)]; ok && n > 0 {
				other = append(other, fmt.Sprintf("%s/%s %d", r.Step, r.Priority, n))
				delete(running, string(r.Step)+"/"+string(r.Priority))
			}
		}
		if len(other) > 0 {
			fmt.Fprintf(w, "running at other steps: %s\n", strings.Join(other, ", "))
		}
		if len(o.Failures) > 0 {
			fmt.Fprintf(w, "\nLATEST FAILURES\n")
			printSummaries(w, o.Failures)
		}
	}
	fmt.Fprintf(w, "\nRECENT JOBS\n")
	switch {
	case fr.RecentError != "":
		fmt.Fprintf(w, "%s\n", fr.RecentError)
	case len(fr.Recent) == 0:
		fmt.Fprintln(w, "no jobs")
	default:
		printSummaries(w, fr.Recent)
	}
}

func printSummaries(w io.Writer, jobs []events.JobSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tSTATUS\tSTEP\tRETRIES\tUPDATED\tUSER\tPROMPT")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.JobID, j.Status, j.Step,
			j.RetryCount, j.MaxRetries, localTime(j.UpdatedAt), j.UserID, shorten(j.Prompt, 40))
	}
	tw.Flush()
}

// isTerminal reports whether w is a character device (a terminal): only then
// does top clear the screen between frames.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
