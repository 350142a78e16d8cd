// Command sheetd runs the sheetpipe service: every pipeline stage, metrics and
// health endpoints, with an embedded NATS server unless NATS_URL is set.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sheetpipe/sheetpipe/internal/buildinfo"
	"github.com/sheetpipe/sheetpipe/service"
)

func main() {
	var cfg service.Config
	fs := flag.NewFlagSet("sheetd", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sheetd [flags]\n\nRuns the sheetpipe service. Every flag has an environment variable (shown in brackets).\n\n")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs, os.Getenv)
	version := fs.Bool("version", false, "print the version, the revision built from and the Go version, and exit")
	_ = fs.Parse(os.Args[1:])
	if *version {
		fmt.Println("sheetd", buildinfo.Get())
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sheetd:", err)
		os.Exit(1)
	}
}
