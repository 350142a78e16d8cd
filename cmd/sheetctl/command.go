package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
)

// command is one sheetctl command.
type command struct {
	name    string
	args    string // synopsis of the arguments after the flags
	summary string // one line for the command list
	about   string // longer help
	// setup registers the command's flags on fs and returns what runs the command
	// on its positional arguments once fs is parsed.
	setup func(a *app, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// commands lists every command but help, in the order the help shows them.
var commands = []*command{
	submitCommand, batchCommand, getCommand, watchCommand, listCommand,
	editCommand, retryCommand, refineCommand, abortCommand, pdfCommand,
	importCommand,
}

const synopsis = "sheetctl [global flags] <command> [flags] [arguments]"

// usage is the command's synopsis line.
func (c *command) usage() string {
	return strings.TrimSpace("sheetctl " + c.name + " [flags] " + c.args)
}

func commandNames() []string {
	names := make([]string, 0, len(commands)+1)
	for _, c := range commands {
		names = append(names, c.name)
	}
	return append(names, "help")
}

func lookup(name string) (*command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return nil, false
}

// runCommand parses c's flags and runs it.
func (a *app) runCommand(ctx context.Context, c *command, args []string) error {
	fs := a.flagSet(c)
	exec := c.setup(a, fs)
	positional, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if a.opts.timeout <= 0 {
		return usageErr(c.name, "--timeout %s is not a positive duration", a.opts.timeout)
	}
	return exec(ctx, positional)
}

// help runs `sheetctl help [command]`.
func (a *app) help(args []string) error {
	switch len(args) {
	case 0:
		a.printHelp(a.out)
		return nil
	case 1:
		c, ok := lookup(args[0])
		if !ok {
			return usageErr("", "unknown command %q", args[0])
		}
		a.printCommandUsage(a.out, c)
		return nil
	}
	return usageErr("", "help takes at most one command")
}

func (a *app) printHelp(w io.Writer) {
	fmt.Fprintf(w, "sheetctl submits worksheet prompts to sheetpipe, follows jobs and saves their PDFs.\n\nUsage:\n  %s\n\nCommands:\n", synopsis)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "show this help, or a command's flags: sheetctl help <command>")
	fmt.Fprint(w, "\nGlobal flags (also accepted after the command):\n")
	fs := flag.NewFlagSet("sheetctl", flag.ContinueOnError)
	(&app{stdio: a.stdio, opts: a.opts}).addGlobalFlags(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, exitHelp)
}

const exitHelp = `
Exit status (the reason of a failure is on stderr):
  0  success
  1  failure: no server or service, a wait that ended waiting_manual or aborted
     (the job's message follows), --timeout passed, a file could not be written
  2  bad usage, or a request the service refused as invalid
  3  unknown job or batch
  4  not allowed in the job's state (e.g. retry of a completed job, abort of an
     aborted one), or the job changed since the revision the change was based on
`

// jobIDArg checks that arg, an argument of command cmd, is a job id.
func jobIDArg(cmd, arg string) (string, error) {
	id, err := uuid.Parse(arg)
	if err != nil {
		return "", usageErr(cmd, "job id %q is not a UUID", arg)
	}
	return id.String(), nil
}

func (a *app) printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.usage(), c.about)
	fs := flag.NewFlagSet("sheetctl "+c.name, flag.ContinueOnError)
	c.setup(&app{stdio: a.stdio, opts: a.opts}, fs)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprint(w, "\nGlobal flags --server, --creds, --timeout and --json also apply (sheetctl help).\n")
}

// flagSet is a command's flag set with the global flags on it.
func (a *app) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("sheetctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.addGlobalFlags(fs)
	return fs
}

// parse parses a command's arguments. Flags may come before or after the
// arguments (`sheetctl submit "a worksheet" --wait`); "--" ends the flags.
func (a *app) parse(c *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			a.printCommandUsage(a.out, c)
			return nil, errHelp
		}
		if err != nil {
			return nil, usageErr(c.name, "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
