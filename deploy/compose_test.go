package deploy_test

import (
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/sheetpipe/sheetpipe/service"
)

// composeEnv is what an operator exports before docker compose up.
var composeEnv = []string{"SHEETD_PASSWORD=" + sheetdPassword, "CLIENT_PASSWORD=" + clientPassword,
	"SHEETPIPE_API_TOKEN=api-token", "GRAFANA_ADMIN_PASSWORD=grafana"}

// loadCompose parses compose.yaml with the compose-spec loader (interpolation,
// validation against the schema, merge keys) in the given environment only.
func loadCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(env), cli.WithName("sheetpipe"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return opts.LoadProject(ctx)
}

func TestComposeProject(t *testing.T) {
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	root, _ := filepath.Abs("..")
	want := []string{"grafana", "nats-1", "nats-2", "nats-3", "prometheus", "sheetd-1", "sheetd-2"}
	if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for _, v := range []string{"nats-1-data", "nats-2-data", "nats-3-data", "prometheus-data", "grafana-data"} {
		if _, ok := p.Volumes[v]; !ok {
			t.Errorf("named volume %s not declared", v)
		}
	}
	for name, svc := range p.Services {
		hc := svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: no health check command", name)
		}
		for _, port := range svc.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s beyond the host's loopback", name, port.HostIP, port.Published)
			}
		}
	}

	t.Run("nats cluster", func(t *testing.T) {
		for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
			svc := p.Services[name]
			conf := "/etc/nats/" + name + ".conf"
			if !slices.Contains(svc.Command, conf) {
				t.Fatalf("%s command %v does not use %s", name, svc.Command, conf)
			}
			mountDir := mountSource(t, svc, "/etc/nats")
			if mountDir != filepath.Join(root, "deploy", "nats") {
				t.Fatalf("%s mounts %s on /etc/nats, want deploy/nats", name, mountDir)
			}
			t.Setenv("SHEETD_PASSWORD", env(svc, "SHEETD_PASSWORD"))
			t.Setenv("CLIENT_PASSWORD", env(svc, "CLIENT_PASSWORD"))
			opts, err := server.ProcessConfigFile(filepath.Join(mountDir, name+".conf"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if mountSource(t, svc, opts.StoreDir) != name+"-data" {
				t.Fatalf("%s: JetStream store %s is not on volume %s-data", name, opts.StoreDir, name)
			}
			for _, u := range opts.Users {
				if u.Password != map[string]string{"sheetd": sheetdPassword, "client": clientPassword}[u.Username] {
					t.Fatalf("%s: user %s's password does not come from the environment", name, u.Username)
				}
			}
			if test := strings.Join(svc.HealthCheck.Test, " "); !strings.Contains(test, "127.0.0.1:"+strconv.Itoa(opts.HTTPPort)+"/healthz") {
				t.Fatalf("%s health check %q is not the monitoring /healthz on port %d", name, test, opts.HTTPPort)
			}
		}
	})

	t.Run("sheetd replicas", func(t *testing.T) {
		known := sheetdEnvVars()
		for _, name := range []string{"sheetd-1", "sheetd-2"} {
			svc := p.Services[name]
			if svc.Build == nil || svc.Build.Context != root || svc.Build.Dockerfile != "Dockerfile" {
				t.Fatalf("%s is not built from the repository's Dockerfile: %+v", name, svc.Build)
			}
			for k := range svc.Environment {
				if !known[k] {
					t.Errorf("%s sets %s, which sheetd does not read", name, k)
				}
			}
			var cfg service.Config
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			cfg.RegisterFlags(fs, func(k string) string { return env(svc, k) })
			if cfg.Replicas != 3 || cfg.NATSUser != "sheetd" || cfg.NATSPassword != sheetdPassword || cfg.APIToken != "api-token" {
				t.Fatalf("%s: replicas %d, user %q, password and token from the environment: %v %v", name, cfg.Replicas, cfg.NATSUser,
					cfg.NATSPassword == sheetdPassword, cfg.APIToken == "api-token")
			}
			if cfg.NATSURL != "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222" {
				t.Fatalf("%s NATS_URL %q does not list the cluster", name, cfg.NATSURL)
			}
			if cfg.HTTPAddr != "0.0.0.0:8080" || len(svc.Ports) != 1 || svc.Ports[0].Target != 8080 {
				t.Fatalf("%s: HTTP %s, ports %+v", name, cfg.HTTPAddr, svc.Ports)
			}
			for _, opt := range []string{"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} {
				if !slices.Contains(svc.SecurityOpt, opt) {
					t.Fatalf("%s security_opt %v lacks %s: the compile jail cannot start", name, svc.SecurityOpt, opt)
				}
			}
			if test := strings.Join(svc.HealthCheck.Test, " "); !strings.Contains(test, "127.0.0.1:8080/readyz") {
				t.Fatalf("%s health check %q is not /readyz", name, test)
			}
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				if svc.DependsOn[n].Condition != types.ServiceConditionHealthy {
					t.Fatalf("%s does not wait for %s to be healthy", name, n)
				}
			}
			if svc.StopGracePeriod == nil || time.Duration(*svc.StopGracePeriod) <= 25*time.Second {
				t.Fatalf("%s stop_grace_period %v: must exceed SHEETPIPE_SHUTDOWN_TIMEOUT (25s)", name, svc.StopGracePeriod)
			}
		}
	})

	t.Run("prometheus and grafana", func(t *testing.T) {
		prom := p.Services["prometheus"]
		if mountSource(t, prom, "/etc/prometheus") != filepath.Join(root, "deploy", "prometheus") || mountSource(t, prom, "/prometheus") != "prometheus-data" {
			t.Fatalf("prometheus mounts %+v", prom.Volumes)
		}
		if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") || !slices.Contains(prom.Command, "--storage.tsdb.path=/prometheus") {
			t.Fatalf("prometheus command %v", prom.Command)
		}
		graf := p.Services["grafana"]
		if mountSource(t, graf, "/etc/grafana/provisioning") != filepath.Join(root, "deploy", "grafana", "provisioning") ||
			mountSource(t, graf, "/var/lib/grafana") != "grafana-data" {
			t.Fatalf("grafana mounts %+v", graf.Volumes)
		}
		dashDir := mountSource(t, graf, grafanaDashboardPath(t))
		if _, err := os.Stat(filepath.Join(dashDir, "sheetpipe.json")); err != nil {
			t.Fatalf("the dashboard provider's path is not the mounted dashboards: %v", err)
		}
		if env(graf, "GF_SECURITY_ADMIN_PASSWORD") != "grafana" {
			t.Fatal("grafana's admin password does not come from GRAFANA_ADMIN_PASSWORD")
		}
	})
}

// TestComposeNeedsSecrets: without the passwords and the API token, compose
// refuses to start rather than run with empty ones.
func TestComposeNeedsSecrets(t *testing.T) {
	for _, missing := range []string{"SHEETD_PASSWORD", "CLIENT_PASSWORD", "SHEETPIPE_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"} {
		t.Run(missing, func(t *testing.T) {
			env := slices.DeleteFunc(slices.Clone(composeEnv), func(kv string) bool { return strings.HasPrefix(kv, missing+"=") })
			_, err := loadCompose(t, env)
			if err == nil || !strings.Contains(err.Error(), missing) {
				t.Fatalf("loaded without %s: %v", missing, err)
			}
		})
	}
}

// sheetdEnvVars are the environment variables sheetd -h names.
func sheetdEnvVars() map[string]bool {
	var cfg service.Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	cfg.RegisterFlags(fs, func(string) string { return "" })
	fs.PrintDefaults()
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(\$([A-Z0-9_]+)\)`).FindAllStringSubmatch(help.String(), -1) {
		known[m[1]] = true
	}
	return known
}

// mountSource is what svc mounts on target: a named volume or a host path.
func mountSource(t *testing.T, svc types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		if v.Target == target {
			if v.Type == types.VolumeTypeBind && !v.ReadOnly {
				t.Errorf("%s: bind mount %s is writable", svc.Name, target)
			}
			return v.Source
		}
	}
	t.Fatalf("%s mounts nothing on %s", svc.Name, target)
	return ""
}

func env(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
}
