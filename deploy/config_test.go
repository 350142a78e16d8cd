package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sheetpipe/sheetpipe/metrics"
)

// promConfig is the part of prometheus.yml sheetpipe uses; decoding is strict, so
// anything else in the file is a test failure to look at.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource dataSource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		Datasource dataSource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's panels
}

type dataSource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func decodeYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/dashboards/sheetpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return d
}

// panelExprs lists every query of the dashboard by panel title.
func panelExprs(d dashboard) map[string][]string {
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	var rules alertRules
	decodeYAML(t, "prometheus/alerts.yml", &rules)
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// exportedNames are the series names a sheetd's /metrics has (a histogram's
// _bucket, _sum and _count), from a real metrics registry, plus Prometheus's up.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics.New(reg).InitLLM(func(string) string { return "gpt-4o-mini" }) // as consumers.New does
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\boffset\s+\S+`)
	promqlLabelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(?:\s*\()?`)
	promqlWords     = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true}
)

// metricNames are the metric names a PromQL expression selects: identifiers that
// are not functions, keywords, label names, strings or durations.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlLabelList.ReplaceAllString(s, " ")
	var out []string
	for _, id := range promqlIdent.FindAllString(s, -1) {
		if strings.HasSuffix(id, "(") || promqlWords[strings.ToLower(id)] {
			continue
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNamesOfPromQL(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (status) (rate(sheetpipe_jobs_finished_total{status="completed"}[$__rate_interval]))`, []string{"sheetpipe_jobs_finished_total"}},
		{`histogram_quantile(0.95, sum by (le, step) (rate(a_bucket[5m]))) > 60`, []string{"a_bucket"}},
		{`max by (consumer) (x) > 0 unless on (consumer) label_replace(y, "consumer", "$1", "step", "(.*)")`, []string{"x", "y"}},
		{`up{job="sheetd"} == 0 or absent(z offset 5m)`, []string{"up", "z"}},
	}
	for _, tc := range tests {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// TestDashboard: the provisioned dashboard parses, queries the provisioned
// datasource, names only metrics sheetd exports, and has the panels operators
// need.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	exported := exportedNames(t)
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string `yaml:"name"`
			UID       string `yaml:"uid"`
			Type      string `yaml:"type"`
			Access    string `yaml:"access"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
			Editable  bool   `yaml:"editable"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("datasource %+v, want the compose prometheus service", ds.Datasources)
	}
	uid := ds.Datasources[0].UID

	used := map[string]bool{}
	exprs := panelExprs(d)
	if d.UID == "" || len(exprs) == 0 {
		t.Fatalf("dashboard %q has no uid or no queries", d.Title)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && (p.Datasource.UID != uid || len(p.Targets) == 0) {
				t.Errorf("panel %q: datasource %q (want %q), %d queries", p.Title, p.Datasource.UID, uid, len(p.Targets))
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != uid {
					t.Errorf("panel %q: query datasource %q", p.Title, tg.Datasource.UID)
				}
				names := metricNames(tg.Expr)
				if len(names) == 0 {
					t.Errorf("panel %q: %q selects no metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					if !exported[n] {
						t.Errorf("panel %q: %q names %s, which sheetd does not export", p.Title, tg.Expr, n)
					}
					used[n] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, need := range []string{"sheetpipe_jobs_finished_total", "sheetpipe_stage_duration_seconds_bucket",
		"sheetpipe_llm_request_duration_seconds_bucket", "sheetpipe_llm_tokens_total", "sheetpipe_compile_duration_seconds_bucket",
		"sheetpipe_consumer_pending", "sheetpipe_kv_cas_conflicts_total"} {
		if !used[need] {
			t.Errorf("no panel shows %s", need)
		}
	}
	if !slices.ContainsFunc(flatten(exprs), func(e string) bool {
		return strings.Contains(e, "histogram_quantile") && strings.Contains(e, "sheetpipe_stage_duration_seconds_bucket")
	}) {
		t.Error("no panel shows stage latency percentiles")
	}
}

// TestPrometheusConfig: prometheus.yml scrapes every sheetd of compose.yaml on
// its HTTP port, and every alert names only exported metrics.
func TestPrometheusConfig(t *testing.T) {
	var cfg promConfig
	decodeYAML(t, "prometheus/prometheus.yml", &cfg)
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for name, svc := range p.Services {
		if svc.Build != nil { // the sheetd image
			want = append(want, name+":8080")
		}
	}
	slices.Sort(want)
	var got []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "sheetd" || (sc.MetricsPath != "" && sc.MetricsPath != "/metrics") {
			t.Errorf("scrape job %q path %q", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
	}
	slices.Sort(got)
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Fatalf("scrape targets %v, want both sheetd: %v", got, want)
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join("prometheus", f)); err != nil {
			t.Errorf("rule file %s: %v", f, err)
		}
	}
	exported := exportedNames(t)
	alerts := alertExprs(t)
	if len(alerts) < 5 {
		t.Fatalf("%d alert rules", len(alerts))
	}
	for name, expr := range alerts {
		for _, n := range metricNames(expr) {
			if !exported[n] {
				t.Errorf("alert %s names %s, which sheetd does not export", name, n)
			}
		}
	}
}

// grafanaDashboardPath is where the dashboard provider looks for dashboards.
func grafanaDashboardPath(t *testing.T) string {
	t.Helper()
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name            string `yaml:"name"`
			Folder          string `yaml:"folder"`
			Type            string `yaml:"type"`
			DisableDeletion bool   `yaml:"disableDeletion"`
			AllowUIUpdates  bool   `yaml:"allowUiUpdates"`
			Options         struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "grafana/provisioning/dashboards/sheetpipe.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v", prov.Providers)
	}
	return prov.Providers[0].Options.Path
}

func flatten(m map[string][]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v...)
	}
	return out
}
