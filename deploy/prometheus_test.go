package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// prometheusTools returns the paths of prometheus and promtool (Debian package
// prometheus). Without them the test is skipped, or fails when
// SHEETPIPE_REQUIRE_PROMETHEUS=1 (make test sets it: make deps installs them).
func prometheusTools(t *testing.T) (prom, promtool string) {
	t.Helper()
	prom, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		if os.Getenv("SHEETPIPE_REQUIRE_PROMETHEUS") == "1" {
			t.Fatalf("prometheus and promtool are required (SHEETPIPE_REQUIRE_PROMETHEUS=1): %v %v; make deps installs them", err1, err2)
		}
		t.Skip("prometheus or promtool not installed (make deps installs them)")
	}
	return prom, promtool
}

// TestPromtoolChecks runs promtool over deploy/prometheus: the configuration and
// the alert rules are valid, and the rules' unit tests (alerts_test.yml) pass.
func TestPromtoolChecks(t *testing.T) {
	_, promtool := prometheusTools(t)
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestPrometheusScrapesSheetd runs a live sheetd (embedded NATS, offline LLM, real
// pdflatex), completes 3 jobs and has a real Prometheus scrape it every second:
// the target is up, the completed jobs are counted, every consumer's backlog is
// exported, every dashboard query returns series and every alert rule evaluates;
// promtool finds nothing to criticise in /metrics.
func TestPrometheusScrapesSheetd(t *testing.T) {
	prom, promtool := prometheusTools(t)
	cfg := sheetdConfig(t)
	runSheetd(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := nats.Connect("nats://" + cfg.NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, submitJob(ctx, t, js, fmt.Sprintf("Worksheet %d: adding fractions, grade 5", i+1)))
	}
	for _, id := range ids {
		waitCompleted(ctx, t, js, id)
	}

	code, body := httpGet("http://" + cfg.HTTPAddr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	check := exec.CommandContext(ctx, promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	api := startPrometheus(ctx, t, prom, cfg.HTTPAddr)
	waitQuery(ctx, t, api+"/api/v1/targets", func(raw json.RawMessage) bool {
		var d struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				ScrapeURL string `json:"scrapeUrl"`
			} `json:"activeTargets"`
		}
		return json.Unmarshal(raw, &d) == nil && len(d.ActiveTargets) == 1 && d.ActiveTargets[0].Health == "up"
	}, "the sheetd target up")
	waitQuery(ctx, t, query(api, `sum(sheetpipe_jobs_finished_total{status="completed"})`), func(raw json.RawMessage) bool {
		v := vector(raw)
		return len(v) == 1 && v[0].Value[1] == "3"
	}, "3 completed jobs")
	waitQuery(ctx, t, query(api, `sheetpipe_consumer_pending`), func(raw json.RawMessage) bool {
		var got []string
		for _, s := range vector(raw) {
			got = append(got, s.Metric["consumer"])
		}
		slices.Sort(got)
		var want []string
		for _, st := range events.Runnable() {
			want = append(want, string(st))
		}
		slices.Sort(want)
		return slices.Equal(got, want)
	}, "sheetpipe_consumer_pending for every consumer")

	for title, exprs := range panelExprs(loadDashboard(t)) {
		for _, expr := range exprs {
			expr = strings.ReplaceAll(expr, "$__rate_interval", "1m")
			waitQuery(ctx, t, query(api, expr), func(raw json.RawMessage) bool { return len(vector(raw)) > 0 },
				fmt.Sprintf("panel %q query %s to return series", title, expr))
		}
	}
	for name, expr := range alertExprs(t) {
		waitQuery(ctx, t, query(api, expr), func(json.RawMessage) bool { return true }, "alert "+name+" to evaluate")
	}
}

// startPrometheus runs prometheus scraping target every second, storing in a
// temporary directory, and returns its base URL; the test's end stops it.
func startPrometheus(ctx context.Context, t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sheetd
    static_configs:
      - targets: [%q]
`, target)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testnats.FreeAddr(t)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	return "http://" + addr
}

func query(api, expr string) string {
	return api + "/api/v1/query?query=" + url.QueryEscape(expr)
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// vector decodes an instant query's data; nil unless it is a vector.
func vector(raw json.RawMessage) []sample {
	var d struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if json.Unmarshal(raw, &d) != nil || d.ResultType != "vector" {
		return nil
	}
	return d.Result
}

// waitQuery polls a Prometheus API URL until it answers success with data that
// ok accepts; a query Prometheus rejects (bad PromQL) fails at once.
func waitQuery(ctx context.Context, t *testing.T, u string, ok func(json.RawMessage) bool, what string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		code, body := httpGet(u)
		last = fmt.Sprintf("%d %s", code, body)
		var r struct {
			Status    string          `json:"status"`
			ErrorType string          `json:"errorType"`
			Error     string          `json:"error"`
			Data      json.RawMessage `json:"data"`
		}
		if json.Unmarshal([]byte(body), &r) != nil {
			continue // not up yet
		}
		if r.ErrorType == "bad_data" {
			t.Fatalf("waiting for %s: Prometheus rejects the query: %s", what, r.Error)
		}
		if r.Status == "success" && ok(r.Data) {
			return
		}
	}
	t.Fatalf("no %s within 30s; last answer: %.600s", what, last)
}
