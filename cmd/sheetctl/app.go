package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/events"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad usage, or a request the service refused as invalid (400)
	exitUnknown = 3 // no such job (404)
	exitState   = 4 // not allowed in the job's state (409)
)

const (
	defaultServer = "nats://127.0.0.1:4222"
	// defaultAPI is the HTTP API of a local sheetd.
	defaultAPI = "http://127.0.0.1:8080"
	// defaultTimeout bounds how long a command waits for a job.
	defaultTimeout = 10 * time.Minute
	// progressEvery is how long a wait stays silent before a line saying it is
	// still waiting: a wait prints a line per change, and this one only when
	// nothing changed for long.
	progressEvery = time.Minute
)

// stdio is the process's environment, injected so tests can run commands in process.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	dir    string // where PDFs are written
	getenv func(string) string
}

// options are the global flags.
type options struct {
	context      string
	server       string
	creds        string
	natsUser     string
	natsPassword string
	api          string
	apiToken     string
	// changed holds the connection flags given on the command line.
	changed map[string]bool
	timeout time.Duration
	// timeoutSet says --timeout was given: watching every job is bounded by it only then.
	timeoutSet bool
	json       bool
}

// app is one invocation of sheetctl.
type app struct {
	stdio
	opts          options
	progressEvery time.Duration
	// beforeChange, when set, runs between reading a job's revision and sending
	// the change based on it: tests change the job there.
	beforeChange func()
}

// globalFlags registers the global flags on fs. The connection settings get
// their values once parsed (resolveSettings): from the flag, a context, the
// environment or the default.
func (a *app) globalFlags(fs *pflag.FlagSet) {
	a.opts.timeout = defaultTimeout
	fs.StringVar(&a.opts.context, "context", "", "use the settings of this saved `context` (sheetctl context; default: the current one)")
	fs.StringVar(&a.opts.server, "server", defaultServer, "NATS server `URL`s, comma-separated ($NATS_URL)")
	fs.StringVar(&a.opts.creds, "creds", "", "NATS credentials `file` ($NATS_CREDS)")
	fs.StringVar(&a.opts.natsUser, "nats-user", "", "NATS `user` ($NATS_USER)")
	fs.StringVar(&a.opts.natsPassword, "nats-password", "", "NATS `password` ($NATS_PASSWORD; better in a context or the environment than on a command line)")
	fs.StringVar(&a.opts.api, "api", defaultAPI, "sheetd's HTTP API `URL`, for top ($SHEETPIPE_API)")
	fs.StringVar(&a.opts.apiToken, "api-token", "", "bearer `token` of the HTTP API ($SHEETPIPE_API_TOKEN)")
	fs.Var(&durationFlag{d: &a.opts.timeout, set: &a.opts.timeoutSet}, "timeout",
		"how long (a `duration`) to wait for a job before giving up; the job goes on")
	fs.BoolVar(&a.opts.json, "json", a.opts.json, "machine output: one JSON object per line")
}

// connectionFlags are the global flags a context can hold.
var connectionFlags = []string{"server", "creds", "nats-user", "nats-password", "api", "api-token"}

// flagValue is the value of connection flag name.
func (o *options) flagValue(name string) string {
	switch name {
	case "server":
		return o.server
	case "creds":
		return o.creds
	case "nats-user":
		return o.natsUser
	case "nats-password":
		return o.natsPassword
	case "api":
		return o.api
	case "api-token":
		return o.apiToken
	}
	return ""
}

// durationFlag is a duration flag that records whether it was given.
type durationFlag struct {
	d   *time.Duration
	set *bool
}

func (f *durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f *durationFlag) Type() string { return "duration" }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("parse error")
	}
	*f.d, *f.set = d, true
	return nil
}

// usageError is a command line that cannot be run; it exits 2 with the usage.
type usageError struct {
	cmd string // the command whose usage to show; "" for sheetctl's
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErr(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// fail prints err (if any) and returns the exit code for it.
func (a *app) fail(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		if c, ok := lookup(ue.cmd); ok {
			fmt.Fprintf(a.err, "sheetctl: %s: %s\nUsage: %s\nRun 'sheetctl help %s' for the flags.\n",
				c.name, ue.msg, c.usage(), c.name)
		} else {
			fmt.Fprintf(a.err, "sheetctl: %s\nUsage: %s\nCommands: %s. Run 'sheetctl help' for details.\n",
				ue.msg, synopsis, strings.Join(commandNames(), ", "))
		}
		return exitUsage
	}
	lines := strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
	fmt.Fprintf(a.err, "sheetctl: %s\n", lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(a.err, "  %s\n", l)
	}
	return exitCode(err)
}

// exitCode is the exit status of a failed command: the class of a refusal by the
// service, else failure.
func exitCode(err error) int {
	var ce *events.ControlError
	switch {
	case errors.Is(err, events.ErrNotFound):
		return exitUnknown
	case errors.Is(err, events.ErrConflict):
		return exitState
	case errors.As(err, &ce) && ce.Code == events.CodeBadRequest:
		return exitUsage
	}
	return exitFailure
}
