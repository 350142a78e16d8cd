package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and pipeline, which share this process) to this file")
	_ = fs.Parse(os.Args[1:])
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sheetbench: cpu profile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sheetbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
