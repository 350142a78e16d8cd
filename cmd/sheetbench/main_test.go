package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildSheetd builds the sheetd binary the memory scenario starts.
func buildSheetd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sheetd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../sheetd").CombinedOutput(); err != nil {
		t.Fatalf("build sheetd: %v\n%s", err, out)
	}
	return bin
}

// TestQuickRun runs every scenario end to end in quick mode, as `sheetbench
// -quick` does, and checks each figure a reader of the report relies on. The
// baseline runs when natscli was built into the repository's bin/ (make bench),
// and is skipped with a note otherwise.
func TestQuickRun(t *testing.T) {
	natsBin, err := filepath.Abs("../../bin/nats")
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(natsBin)
	haveNATS := statErr == nil
	report := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	baseline := filepath.Join(t.TempDir(), "baseline.md")
	if err := os.WriteFile(baseline, []byte(baselineReport), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Run(ctx, Config{Quick: true, Out: report, NATS: natsBin, Sheetd: buildSheetd(t),
		Corpus: filepath.Join("..", "..", "latex", "testdata", "corpus"), Compare: baseline, CompareRef: "65b303a"}, &out)
	if err != nil {
		t.Fatalf("quick run: %v\n%s", err, out.String())
	}

	if haveNATS {
		if r.Baseline == nil || r.Baseline.PubSync <= 0 || r.Baseline.KVPut <= 0 {
			t.Errorf("baseline = %+v, want positive natscli rates", r.Baseline)
		}
	} else if r.Baseline != nil || !strings.Contains(strings.Join(r.Notes, "\n"), "baseline skipped") {
		t.Errorf("without natscli: baseline %+v, notes %q; want it skipped with a note", r.Baseline, r.Notes)
	}

	o := r.Overhead
	if o == nil || o.Rate <= 0 || o.HalfRate != o.Rate/2 {
		t.Fatalf("overhead = %+v, want a saturation rate and half of it offered", o)
	}
	// Each job's request, three tickets, seven status events and seven job
	// writes are stored; every stored message was sent by a client.
	if o.PerJob.stored < 18 || o.PerJob.ops < o.PerJob.stored {
		t.Errorf("per job: %.1f ops, %.1f stored; want at least 18 stored and ops ≥ stored", o.PerJob.ops, o.PerJob.stored)
	}
	// Every message the server received came from the two counted connections.
	var counted float64
	for _, k := range o.PerJob.kinds {
		counted += k.PerJob
	}
	if counted < 0.98*o.PerJob.ops || counted > 1.02*o.PerJob.ops {
		t.Errorf("counted %.2f messages per job by kind, the server received %.2f", counted, o.PerJob.ops)
	}
	if c := r.Compare; c == nil || c.Skipped != "" || c.Rate != 610 || c.PerJob != 39.5 {
		t.Errorf("compare = %+v, want the baseline's 610 jobs/s and 39.5 per job", c)
	}
	if len(o.Busy) != 4 {
		t.Errorf("busy = %+v, want prompt, design, latex and compile", o.Busy)
	}
	for _, b := range o.Busy {
		if b.Workers <= 0 {
			t.Errorf("stage %s: %.2f busy workers, want some", b.Stage, b.Workers)
		}
	}
	if len(o.Hops) != 1+len(queueSteps) {
		t.Fatalf("hops = %+v, want the request hop and %d queue hops", o.Hops, len(queueSteps))
	}
	for _, h := range append(o.Hops, hop{Name: "end to end", Dist: o.HalfE2E}) {
		if h.Dist.N != o.HalfJobs || h.Dist.P50 <= 0 || h.Dist.P99 < h.Dist.P50 {
			t.Errorf("hop %s = %+v, want %d positive, ordered samples", h.Name, h.Dist, o.HalfJobs)
		}
	}

	if c := r.Concurrency; c == nil || c.Rate <= 0 || c.Bound != 80 {
		t.Errorf("concurrency = %+v, want a rate against the bound 16 / 200ms = 80 jobs/s", c)
	}
	if c := r.Compile; c == nil || c.Single <= 0 || c.Rate <= 0 || c.RepeatRate <= 0 || c.Jobs != 2*c.Cores {
		t.Errorf("compile = %+v, want a compile time and both rates", c)
	}
	if m := r.Memory; m == nil || m.IdleKiB <= 0 || m.QueuedKiB <= 0 || m.PeakKiB < m.QueuedKiB {
		t.Errorf("memory = %+v, want RSS idle and queued", m)
	}
	if c := r.Corpus; c == nil || c.Good != 3 || c.Broken != 3 || c.GoodOK != 3 || c.LineOK != 3 || c.Median <= 0 {
		t.Errorf("corpus = %+v, want 3 good compiled and 3 broken on their line", c)
	}

	if rl := r.RateLimit; rl == nil || len(rl.Runs) != 2 || rl.Runs[0].RPM != rateLimitN || rl.Runs[1].RPM != 0 ||
		rl.Runs[0].Calls == 0 || rl.Runs[1].Calls == 0 || rl.Runs[0].OpsPerReq < 2 {
		t.Errorf("ratelimit = %+v, want a run with LLM_RPM (2 or more KV operations a call) and one without, both with calls", rl)
	}

	doc, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# sheetpipe benchmarks", "## A shared LLM rate limit (issue 17)", "## Reproduce", "## What each figure means",
		"| CPUs (nproc) |", "quick smoke run", "benchmark-only fixed-PDF compiler", "| Target (2-core machine) |",
		"| jobs/s at saturation | 610 |", "| client messages per job (in_msgs) | 39.5 |", "| **KV write** |", "| **status event (jobs.status)** |"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, tg := range r.targets() {
		measured := tg.Measured != ""
		if needsBaseline := strings.Contains(tg.Name, "budget"); measured != (!needsBaseline || haveNATS) {
			t.Errorf("target %q measured = %v", tg.Name, measured)
		}
		if !strings.Contains(string(doc), "| "+tg.Name+" | "+tg.Goal+" | "+tg.Measured+" | "+tg.result()+" |") {
			t.Errorf("report lacks the row of target %q", tg.Name)
		}
	}
	if !strings.Contains(out.String(), "| Scenario | Figure | Value |") {
		t.Errorf("stdout lacks the results table:\n%s", out.String())
	}
}

// TestMissingBinaries checks that a missing tool is a clear failure of its
// scenario in a full run, and only a note in a quick one.
func TestMissingBinaries(t *testing.T) {
	tests := []struct {
		name, scenarios string
		quick           bool
		wantErr         string // empty: no error
		wantNote        string
	}{
		{name: "natscli, full run", scenarios: "baseline", wantErr: "natscli not found", wantNote: "baseline failed"},
		{name: "natscli, quick run", scenarios: "baseline", quick: true, wantNote: "baseline skipped (quick run)"},
		{name: "sheetd", scenarios: "memory", quick: true, wantErr: "sheetd binary", wantNote: "memory failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "missing")
			var out bytes.Buffer
			r, err := Run(context.Background(), Config{Quick: tt.quick, Scenarios: tt.scenarios, NATS: missing, Sheetd: missing}, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if r == nil || len(r.Notes) != 1 || !strings.HasPrefix(r.Notes[0], tt.wantNote) {
				t.Fatalf("notes = %q, want one starting %q", r.Notes, tt.wantNote)
			}
			if !strings.Contains(out.String(), "- "+r.Notes[0]) {
				t.Errorf("stdout lacks the note:\n%s", out.String())
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "some scenarios", cfg: Config{Scenarios: "overhead,memory", Jobs: 20}},
		{name: "unknown scenario", cfg: Config{Scenarios: "overhead,latency"}, wantErr: `unknown scenario "latency"`},
		{name: "too few jobs", cfg: Config{Jobs: 5}, wantErr: "-jobs 5"},
		{name: "negative jobs", cfg: Config{Jobs: -1}, wantErr: "-jobs -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if got := (Config{Scenarios: "memory,baseline"}).scenarios(); strings.Join(got, ",") != "baseline,memory" {
		t.Errorf("scenarios = %v, want run order baseline,memory", got)
	}
}

func TestParseAggregate(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    float64
		wantErr bool
	}{
		{name: "js pub sync", out: "  [16] 2,664 msgs/sec ~ 333 KiB/sec\n\n NATS JetStream synchronous publisher aggregated stats: 42,571 msgs/sec ~ 5.2 MiB/sec\n", want: 42571},
		{name: "kv put", out: " NATS KV putter aggregated stats: 9,870 msgs/sec ~ 1.2 MiB/sec\n", want: 9870},
		{name: "no aggregate", out: "nats: error: could not access stream\n", wantErr: true},
		{name: "zero rate", out: "aggregated stats: 0 msgs/sec", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAggregate(tt.out)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseAggregate = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRates(t *testing.T) {
	// Four batches of 16 completing every 200ms after a 300ms fill: 80 jobs/s.
	start := time.Now()
	var done []time.Time
	for b := range 4 {
		for i := range 16 {
			done = append(done, start.Add(300*time.Millisecond+time.Duration(b)*200*time.Millisecond+time.Duration(i)*time.Microsecond))
		}
	}
	if got := batchRate(done, 16); got < 79 || got > 81 {
		t.Errorf("batchRate = %.2f, want 80", got)
	}
	if got := batchRate(done[:16], 16); got != 0 {
		t.Errorf("batchRate of one batch = %.2f, want 0 (no rate)", got)
	}
	// One completion every 10ms: 100 jobs/s.
	even := make([]time.Time, 50)
	for i := range even {
		even[i] = start.Add(time.Duration(i) * 10 * time.Millisecond)
	}
	if got := steadyRate(even); got < 99.9 || got > 100.1 {
		t.Errorf("steadyRate = %.2f, want 100", got)
	}
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	if d := distOf(ds); d.N != 100 || d.P50 != 50*time.Millisecond || d.P99 != 99*time.Millisecond {
		t.Errorf("distOf = %+v, want p50 50ms and p99 99ms of 100", d)
	}
}
