package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// machine describes where the figures were measured.
type machine struct {
	CPUs       int
	CPUModel   string
	Go         string
	NATSServer string
	PDFLatex   string
	LoadAvg    string // 1, 5 and 15 minute load averages when the run started
	Date       time.Time
}

func describeMachine(ctx context.Context) machine {
	return machine{
		CPUs:       runtime.NumCPU(),
		CPUModel:   cpuModel(),
		Go:         runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		NATSServer: server.VERSION,
		PDFLatex:   pdflatexVersion(ctx),
		LoadAvg:    loadAvg(),
		Date:       time.Now().UTC(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func pdflatexVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pdflatex", "--version").Output()
	if err != nil {
		return "not found"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}
