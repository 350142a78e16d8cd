package deploy_test

import (
	"context"
	"flag"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestDockerRunExample runs sheetd with the settings of the Dockerfile's
// `docker run` example (Docker itself does not run here): its -e variables, the
// nats-auth.conf the image copies from deploy/nats/auth.conf, NATS on 0.0.0.0
// published on the host's loopback. sheetd starts, a program on the host logged
// in as user client submits a job through the control API and follows it to
// completed, and a connection without credentials is turned away.
func TestDockerRunExample(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "#   docker run ")
	end := strings.Index(text[max(start, 0):], "sheetpipe/sheetd\n")
	if start < 0 || end < 0 {
		t.Fatal("the Dockerfile has no `docker run ... sheetpipe/sheetd` example")
	}
	example := text[start : start+end]
	if !strings.Contains(example, "-p 127.0.0.1:4222:4222") || !strings.Contains(example, "-p 127.0.0.1:8080:8080") {
		t.Fatalf("the example publishes NATS or HTTP other than on the host's loopback:\n%s", example)
	}
	if !strings.Contains(text, "\nCOPY deploy/nats/auth.conf /etc/sheetpipe/nats-auth.conf\n") {
		t.Fatal("the image does not hold deploy/nats/auth.conf as /etc/sheetpipe/nats-auth.conf")
	}
	secrets := map[string]string{"SHEETPIPE_API_TOKEN": "api-token", "SHEETD_PASSWORD": sheetdPassword, "CLIENT_PASSWORD": clientPassword}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`-e ([A-Z_]+)=("[^"]*"|\S+)`).FindAllStringSubmatch(example, -1) {
		env[m[1]] = os.Expand(strings.Trim(m[2], `"`), func(k string) string { return secrets[k] })
	}
	for k, v := range map[string]string{"SHEETPIPE_NATS_LISTEN": "0.0.0.0:4222", "SHEETPIPE_NATS_CONFIG": "/etc/sheetpipe/nats-auth.conf",
		"NATS_USER": "sheetd", "NATS_PASSWORD": sheetdPassword, "SHEETD_PASSWORD": sheetdPassword, "CLIENT_PASSWORD": clientPassword} {
		if env[k] != v {
			t.Fatalf("the example sets %s=%q, want %q:\n%s", k, env[k], v, example)
		}
	}
	// The server reads the passwords auth.conf names from the environment.
	t.Setenv("SHEETD_PASSWORD", env["SHEETD_PASSWORD"])
	t.Setenv("CLIENT_PASSWORD", env["CLIENT_PASSWORD"])

	// Outside the container: the repository's auth.conf, free ports, a temp dir.
	_, port, err := net.SplitHostPort(testnats.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	env["SHEETPIPE_NATS_LISTEN"] = "0.0.0.0:" + port
	env["SHEETPIPE_NATS_CONFIG"] = "nats/auth.conf"
	env["SHEETPIPE_HTTP_ADDR"] = testnats.FreeAddr(t)
	env["SHEETPIPE_DATA_DIR"] = t.TempDir()
	var cfg service.Config
	cfg.RegisterFlags(flag.NewFlagSet("sheetd", flag.ContinueOnError), func(k string) string { return env[k] })
	base := sheetdConfig(t)
	cfg.LLMProvider, cfg.LogLevel, cfg.CompileCommand = base.LLMProvider, base.LogLevel, base.CompileCommand
	runSheetd(t, cfg)

	url := "nats://127.0.0.1:" + port
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("a connection without credentials got into the embedded server")
	}
	nc, err := nats.Connect(url, nats.UserInfo("client", clientPassword))
	if err != nil {
		t.Fatalf("user client from the host: %v", err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	id, err := c.Submit(ctx, events.JobRequest{UserID: "teacher", Prompt: "fractions, grade 5"})
	if err != nil {
		t.Fatalf("sheetpipe.submit as client: %v", err)
	}
	watch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var last events.StatusEvent
	for ev := range watch {
		last = ev
	}
	if last.Status != events.StatusCompleted {
		t.Fatalf("job %s ended %q (%s), want completed", id, last.Status, last.Message)
	}
}

// TestComposeVersionDocumented: compose.yaml's top-level name needs Docker
// Compose v2, which compose.yaml and docs/operations.md say.
func TestComposeVersionDocumented(t *testing.T) {
	yaml, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^name: `).Match(yaml) {
		t.Skip("compose.yaml has no top-level name: any Compose version reads it")
	}
	for file, text := range map[string][]byte{"compose.yaml": yaml, "docs/operations.md": ops} {
		if !strings.Contains(string(text), "Docker Compose v2") {
			t.Errorf("%s does not say compose.yaml needs Docker Compose v2 (its top-level name:)", file)
		}
	}
}
