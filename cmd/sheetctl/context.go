package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var contextCommand = &command{
	name:    "context",
	args:    "add <name> | ls | use <name> | rm <name>",
	summary: "save, list, select and remove named server settings (like nats context)",
	about: `A context is a named set of the connection settings: --server, --creds,
--nats-user, --nats-password (NATS), --api and --api-token (the HTTP API, for
top). They are kept in $XDG_CONFIG_HOME/sheetctl/config.json (default
~/.config/sheetctl/config.json), mode 0600; sheetctl refuses a config file
others may read or write.

  sheetctl context add <name> --server URL [--creds file] [--nats-user U]
      [--nats-password P] [--api URL] [--api-token T] [--description text] [--use]
      saves the settings given as flags (replacing a context of that name); the
      first context, or one added with --use, becomes the current one
  sheetctl context ls      lists the contexts (secrets shown as "set"); --json
  sheetctl context use <name>   makes it the current one
  sheetctl context rm <name>    removes it

Every other command takes its settings from its flags, then the context --context
names, then the environment (NATS_URL, NATS_CREDS, NATS_USER, NATS_PASSWORD,
SHEETPIPE_API, SHEETPIPE_API_TOKEN), then the current context, then the
defaults.`,
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var description string
		var use bool
		fs.StringVar(&description, "description", "", "what the context is for (context add)")
		fs.BoolVar(&use, "use", false, "make the added context the current one (context add)")
		return func(_ context.Context, args []string) error { return a.contextCmd(args, description, use) }
	},
	complete: func(a *app) cobra.CompletionFunc {
		return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch {
			case len(args) == 0:
				return []cobra.Completion{"add", "ls", "use", "rm"}, cobra.ShellCompDirectiveNoFileComp
			case len(args) == 1 && (args[0] == "use" || args[0] == "rm"):
				if c, _, err := a.loadConfig(); err == nil {
					return c.names(), cobra.ShellCompDirectiveNoFileComp
				}
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
	},
}

func (a *app) contextCmd(args []string, description string, use bool) error {
	if len(args) == 0 {
		return usageErr("context", "context needs add, ls, use or rm")
	}
	want := map[string]int{"add": 2, "ls": 1, "use": 2, "rm": 2}
	n, ok := want[args[0]]
	switch {
	case !ok:
		return usageErr("context", "unknown context command %q (add, ls, use or rm)", args[0])
	case len(args) != n && n == 1:
		return usageErr("context", "context %s takes no arguments", args[0])
	case len(args) != n:
		return usageErr("context", "context %s needs one context name", args[0])
	case n == 2 && !contextName.MatchString(args[1]):
		return usageErr("context", "context name %q: use letters, digits, '.', '_' and '-' (up to 64, starting with a letter or digit)", args[1])
	case args[0] != "add" && (description != "" || use || len(a.opts.changed) > 0):
		return usageErr("context", "flags are for context add, not context %s", args[0])
	}
	c, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	switch args[0] {
	case "ls":
		a.printContexts(c)
		return nil
	case "add":
		return a.contextAdd(c, path, args[1], description, use)
	}
	name := args[1]
	if c.Contexts[name] == nil {
		return fmt.Errorf("no context %q (sheetctl context ls lists them)", name)
	}
	if args[0] == "use" {
		c.Current = name
	} else {
		delete(c.Contexts, name)
		if c.Current == name {
			c.Current = ""
		}
	}
	if err := saveConfig(path, c); err != nil {
		return err
	}
	switch {
	case a.opts.json:
		a.printContextChange(name, map[string]string{"use": "used", "rm": "removed"}[args[0]], c.Current, path)
	case args[0] == "use":
		fmt.Fprintf(a.out, "context %s is the current one\n", name)
	default:
		fmt.Fprintf(a.out, "context %s removed\n", name)
	}
	return nil
}

// printContextChange is the --json line of context add, use and rm.
func (a *app) printContextChange(name, action, current, path string) {
	a.printJSON(struct {
		Context string `json:"context"`
		Action  string `json:"action"`
		Current string `json:"current"`
		Config  string `json:"config"`
	}{name, action, current, path})
}

func (a *app) contextAdd(c *config, path, name, description string, use bool) error {
	ctx := &sheetContext{Description: description}
	for flag, v := range map[string]*string{
		"server": &ctx.Server, "creds": &ctx.Creds, "nats-user": &ctx.NATSUser, "nats-password": &ctx.NATSPassword,
		"api": &ctx.API, "api-token": &ctx.APIToken,
	} {
		if a.opts.changed[flag] {
			*v = a.opts.flagValue(flag)
		}
	}
	if *ctx == (sheetContext{Description: description}) {
		return usageErr("context", "context add needs at least one setting: --server, --creds, --nats-user, --nats-password, --api or --api-token")
	}
	_, replaced := c.Contexts[name]
	c.Contexts[name] = ctx
	if use || c.Current == "" {
		c.Current = name
	}
	if err := saveConfig(path, c); err != nil {
		return err
	}
	verb := "added"
	if replaced {
		verb = "replaced"
	}
	if a.opts.json {
		a.printContextChange(name, verb, c.Current, path)
		return nil
	}
	fmt.Fprintf(a.out, "context %s %s in %s", name, verb, path)
	if c.Current == name {
		fmt.Fprint(a.out, "; it is the current one")
	}
	fmt.Fprintln(a.out)
	return nil
}

// contextJSON is one context as context ls --json shows it: secrets only as
// whether they are set.
type contextJSON struct {
	Name         string `json:"name"`
	Current      bool   `json:"current"`
	Server       string `json:"server,omitempty"`
	Creds        string `json:"creds,omitempty"`
	NATSUser     string `json:"nats_user,omitempty"`
	NATSPassword bool   `json:"nats_password_set"`
	API          string `json:"api,omitempty"`
	APIToken     bool   `json:"api_token_set"`
	Description  string `json:"description,omitempty"`
}

func (a *app) printContexts(c *config) {
	rows := make([]contextJSON, 0, len(c.Contexts))
	for _, n := range c.names() {
		x := c.Contexts[n]
		rows = append(rows, contextJSON{Name: n, Current: n == c.Current, Server: redact(x.Server), Creds: x.Creds,
			NATSUser: x.NATSUser, NATSPassword: x.NATSPassword != "", API: x.API, APIToken: x.APIToken != "", Description: x.Description})
	}
	if a.opts.json {
		for _, r := range rows {
			a.printJSON(r)
		}
		return
	}
	if len(rows) == 0 {
		fmt.Fprintf(a.out, "no contexts; add one with: sheetctl context add <name> --server URL\n")
		return
	}
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tCREDS\tNATS USER\tPASSWORD\tAPI\tTOKEN\tDESCRIPTION")
	set := func(b bool) string {
		if b {
			return "set"
		}
		return "-"
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range rows {
		cur := ""
		if r.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cur, r.Name, dash(r.Server), dash(r.Creds), dash(r.NATSUser),
			set(r.NATSPassword), dash(r.API), set(r.APIToken), r.Description)
	}
	tw.Flush()
}
