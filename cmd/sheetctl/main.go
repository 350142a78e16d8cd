package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, dir: ".", getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run parses the global flags, dispatches to the command and returns the exit code.
func run(ctx context.Context, sys stdio, args []string) int {
	return (&app{stdio: sys, progressEvery: progressEvery}).run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	fs := a.globalFlags()
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		a.printHelp(a.out)
		return exitOK
	case err != nil:
		return a.fail(usageErr("", "%v", err))
	case fs.NArg() == 0:
		return a.fail(usageErr("", "missing command"))
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return a.fail(a.help(rest))
	}
	cmd, ok := lookup(name)
	if !ok {
		return a.fail(usageErr("", "unknown command %q", name))
	}
	return a.fail(a.runCommand(ctx, cmd, rest))
}
