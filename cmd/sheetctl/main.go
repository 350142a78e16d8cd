package main

import (
	"context"
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

// run parses the command line, runs the command and returns the exit code.
func run(ctx context.Context, sys stdio, args []string) int {
	return (&app{stdio: sys, progressEvery: progressEvery}).run(ctx, args)
}

// run builds the command tree (fresh for each invocation: the flags bind to its
// variables), runs the command args name and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	return a.fail(root.ExecuteContext(ctx))
}
