package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// command is one sheetctl command.
type command struct {
	name    string
	args    string // synopsis of the arguments after the flags
	summary string // one line for the command list
	about   string // longer help
	// setup registers the command's flags on fs and returns what runs the command
	// on its positional arguments once fs is parsed.
	setup func(a *app, fs *pflag.FlagSet) func(ctx context.Context, args []string) error
	// complete, when set, completes the command's positional arguments.
	complete func(a *app) cobra.CompletionFunc
}

// commands lists every command but help and completion, in the order the help
// shows them.
var commands = []*command{
	submitCommand, batchCommand, getCommand, historyCommand, watchCommand, listCommand, topCommand, queueCommand,
	editCommand, retryCommand, refineCommand, abortCommand, pdfCommand,
	importCommand, contextCommand, usageCommand,
}

const synopsis = "sheetctl [global flags] <command> [flags] [arguments]"

// usage is the command's synopsis line.
func (c *command) usage() string {
	return strings.TrimSpace("sheetctl " + c.name + " [flags] " + c.args)
}

func commandNames() []string {
	names := make([]string, 0, len(commands)+2)
	for _, c := range commands {
		names = append(names, c.name)
	}
	return append(names, "completion", "help")
}

func lookup(name string) (*command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return nil, false
}

// rootCommand is sheetctl's command tree, on cobra: the global flags are
// persistent (accepted before and after the command), flags and arguments mix
// (`sheetctl submit "a worksheet" --wait`), "--" ends the flags, and every error
// comes back from Execute for a.fail to print.
func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "sheetctl",
		Short:         "sheetctl submits worksheet prompts to sheetpipe, follows jobs and saves their PDFs.",
		Version:       versionText(),
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("", "missing command")
			}
			return usageErr("", "unknown command %q", args[0])
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.opts.timeout <= 0 {
				return usageErr(cmd.Name(), "--timeout %s is not a positive duration", a.opts.timeout)
			}
			a.opts.changed = map[string]bool{}
			for _, f := range connectionFlags {
				if cmd.Flags().Changed(f) {
					a.opts.changed[f] = true
				}
			}
			if _, ok := lookup(cmd.Name()); !ok || cmd.Name() == "context" {
				return nil // help, completion and context connect nowhere
			}
			return a.resolveSettings(cmd)
		},
	}
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.err)
	root.SetVersionTemplate("{{.Version}}\n")
	a.globalFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErr(cmd.Name(), "%v", err)
	})
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		if cmd == root {
			a.printHelp(a.out, root)
		} else if c, ok := lookup(cmd.Name()); ok {
			a.printCommandUsage(a.out, c, cmd)
		} else {
			defaultHelp(cmd, args)
		}
	})
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "show this help, or a command's flags: sheetctl help <command>",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return commandNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error { return a.help(root, args) },
	})
	for _, c := range commands {
		root.AddCommand(a.cobraCommand(c))
	}
	// cobra's completion command, which without a known shell would print its
	// help and exit 0.
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		if cmd.Name() == "completion" {
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(_ *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usageErr("", "completion: missing shell (bash, zsh, fish or powershell)")
				}
				return usageErr("", "completion: unknown shell %q (bash, zsh, fish or powershell)", args[0])
			}
		}
	}
	return root
}

// cobraCommand is c as a cobra command with its flags.
func (a *app) cobraCommand(c *command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   strings.TrimSpace(c.name + " " + c.args),
		Short: c.summary,
		Long:  c.about,
		Args:  cobra.ArbitraryArgs,
	}
	if c.complete != nil {
		cmd.ValidArgsFunction = c.complete(a)
	}
	exec := c.setup(a, cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return exec(cmd.Context(), args) }
	for flag, values := range flagValues {
		if cmd.Flags().Lookup(flag) != nil {
			cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	return cmd
}

// flagValues are the values shell completion offers for a flag.
var flagValues = map[string][]cobra.Completion{
	"mode":     {"auto", "manual"},
	"priority": {"high", "normal", "low"},
	"status":   {"pending", "running", "error", "waiting_manual", "waiting_ai_fix", "completed", "aborted"},
}

// help runs `sheetctl help [command]`.
func (a *app) help(root *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		a.printHelp(a.out, root)
		return nil
	case 1:
		for _, cmd := range root.Commands() {
			if cmd.Name() == args[0] {
				return cmd.Help()
			}
		}
		return usageErr("", "unknown command %q", args[0])
	}
	return usageErr("", "help takes at most one command")
}

func (a *app) printHelp(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n\nCommands:\n", root.Short, synopsis)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "completion", "print a shell completion script: sheetctl completion bash|zsh|fish")
	fmt.Fprintf(w, "  %-8s %s\n", "help", "show this help, or a command's flags: sheetctl help <command>")
	fmt.Fprint(w, "\nGlobal flags (also accepted after the command):\n")
	fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
	fs.AddFlagSet(root.PersistentFlags())
	fs.BoolP("help", "h", false, "show this help, or with a command its flags")
	fs.Bool("version", false, "print sheetctl's version, revision and Go version")
	fmt.Fprint(w, fs.FlagUsages())
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

func (a *app) printCommandUsage(w io.Writer, c *command, cmd *cobra.Command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.usage(), c.about)
	fmt.Fprint(w, "\nFlags:\n")
	fmt.Fprint(w, cmd.LocalNonPersistentFlags().FlagUsages())
	fmt.Fprint(w, "\nThe global flags (--context, --server, --creds, --timeout, --json, ...) also apply: sheetctl help.\n")
}
