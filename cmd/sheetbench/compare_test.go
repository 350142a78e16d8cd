package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// baselineReport is the overhead part of a report a baseline sheetbench writes.
const baselineReport = `| Machine |  |
| --- | --- |
| load average at start | 0.50 0.40 0.30 |

| Scenario | Figure | Value |
| --- | --- | --- |
| baseline | ` + "`nats bench js pub sync`" + `, 16 clients, 50,000 msgs | 26,905 ops/s (the budget) |
| overhead | jobs/s at saturation (5,000 jobs, 512 in flight; instant LLM, benchmark-only fixed-PDF compiler) | 610 |
| overhead | JetStream ops per job (client messages to the server) | 39.5 |
| overhead | of which JetStream API requests / stored messages per job | 2.0 / 26.5 |
`

func TestLoadComparison(t *testing.T) {
	tests := []struct {
		name        string
		content     string // "": no file
		wantRate    float64
		wantPerJob  float64
		wantSkipped string
	}{
		{name: "baseline report", content: baselineReport, wantRate: 610, wantPerJob: 39.5},
		{name: "thousands", content: strings.Replace(baselineReport, "| 610 |", "| 1,095 |", 1), wantRate: 1095, wantPerJob: 39.5},
		{name: "skipped by make", content: "skipped: git ref 65b303a is not in this clone\n", wantSkipped: "git ref 65b303a is not in this clone"},
		{name: "no file", wantSkipped: "no baseline report"},
		{name: "no overhead rows", content: "| baseline | x | 1 |\n", wantSkipped: "no overhead jobs/s"},
		{name: "bad figure", content: strings.Replace(baselineReport, "| 39.5 |", "| many |", 1), wantSkipped: "JetStream ops per job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "baseline.md")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := loadComparison(path, "65b303a")
			if tt.wantSkipped == "" && c.LoadAvg != "0.50 0.40 0.30" {
				t.Errorf("load average %q, want the report's", c.LoadAvg)
			}
			if c.Rate != tt.wantRate || c.PerJob != tt.wantPerJob || !strings.Contains(c.Skipped, tt.wantSkipped) ||
				(tt.wantSkipped == "") != (c.Skipped == "") {
				t.Fatalf("loadComparison = %+v, want rate %v, per job %v, skipped %q", c, tt.wantRate, tt.wantPerJob, tt.wantSkipped)
			}
		})
	}
}
