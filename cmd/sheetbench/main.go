package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var cfg Config
	fs := flag.NewFlagSet("sheetbench", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sheetbench [flags]\n\nMeasures sheetpipe on this machine (see BENCHMARKS.md; `make bench` runs it all).\n\n")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sheetbench:", err)
		os.Exit(1)
	}
}
