package service

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

func parse(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.DataDir != "./data" || cfg.NATSListen != "127.0.0.1:4222" || cfg.HTTPAddr != "127.0.0.1:8080" ||
		cfg.Replicas != 1 || cfg.MaxRetries != 3 || cfg.LLMModel != "gpt-4o-mini" || cfg.LLMTimeout != 120*time.Second ||
		cfg.CompileTimeout != 30*time.Second || cfg.LogFormat != "json" {
		t.Fatalf("defaults: %+v", cfg)
	}
	st, _ := cfg.stages()
	if !slices.Equal(st, append(slices.Clone(events.Stages), events.StageMeta)) {
		t.Fatalf("default stages %v, want the pipeline's and meta", st)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"NATS_URL": "nats://a:4222", "SHEETPIPE_REPLICAS": "3", "LLM_TIMEOUT": "5s",
		"SHEETPIPE_STAGES": "design,latex,meta", "SHEETPIPE_CONCURRENCY": "design=4, latex=2,meta=3", "LLM_MODEL_FIX": "big",
	}
	cfg, err := parse(t, env, "-replicas", "5", "-compile-timeout", "10s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://a:4222" || cfg.Replicas != 5 || cfg.LLMTimeout != 5*time.Second ||
		cfg.CompileTimeout != 10*time.Second || cfg.LLMModelFix != "big" {
		t.Fatalf("env and flags not applied: %+v", cfg)
	}
	st, _ := cfg.stages()
	conc, _ := cfg.concurrency()
	if !slices.Equal(st, []events.Stage{events.StageDesign, events.StageLatex, events.StageMeta}) ||
		conc[events.StageDesign] != 4 || conc[events.StageLatex] != 2 || conc[events.StageMeta] != 3 {
		t.Fatalf("stages %v concurrency %v", st, conc)
	}
}

func TestHelpHidesTheAPIKey(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg.RegisterFlags(fs, func(k string) string {
		if k == "OPENAI_API_KEY" {
			return "sk-secret-value"
		}
		return ""
	})
	fs.PrintDefaults()
	if strings.Contains(out.String(), "sk-secret-value") || cfg.OpenAIKey != "sk-secret-value" {
		t.Fatalf("help shows the key, or the key was not read:\n%s", out.String())
	}
	if err := fs.Parse([]string{"-openai-api-key", "sk-other"}); err != nil || cfg.OpenAIKey != "sk-other" {
		t.Fatalf("flag not applied: %v %q", err, cfg.OpenAIKey)
	}
}

func TestHelpHidesTheWebhookSecret(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg.RegisterFlags(fs, func(k string) string {
		return map[string]string{"SHEETPIPE_WEBHOOK_SECRET": "hook-secret-value", "SHEETPIPE_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"}[k]
	})
	fs.PrintDefaults()
	help := out.String()
	if strings.Contains(help, "hook-secret-value") || cfg.WebhookSecret != "hook-secret-value" ||
		!strings.Contains(help, "$SHEETPIPE_WEBHOOK_SECRET") || !strings.Contains(help, "$SHEETPIPE_WEBHOOK_ALLOW_NETS") {
		t.Fatalf("help shows the secret, misses the webhook settings, or the secret was not read:\n%s", help)
	}
	if err := fs.Parse([]string{"-webhook-secret", "other"}); err != nil || cfg.WebhookSecret != "other" || cfg.WebhookAllowNets != "127.0.0.0/8" {
		t.Fatalf("flags not applied: %v %q %q", err, cfg.WebhookSecret, cfg.WebhookAllowNets)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("valid webhook settings refused: %v", err)
	}
}

func TestConfigRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"replicas not a number", map[string]string{"SHEETPIPE_REPLICAS": "three"}, "$SHEETPIPE_REPLICAS=\"three\" is not a whole number"},
		{"replicas out of range", map[string]string{"SHEETPIPE_REPLICAS": "7"}, "SHEETPIPE_REPLICAS=7"},
		{"bad duration", map[string]string{"COMPILE_TIMEOUT": "soon"}, "$COMPILE_TIMEOUT=\"soon\" is not a duration"},
		{"zero duration", map[string]string{"LLM_TIMEOUT": "0s"}, "LLM_TIMEOUT=0s: must be positive"},
		{"unknown stage", map[string]string{"SHEETPIPE_STAGES": "design,print"}, `unknown stage "print"`},
		{"bad concurrency", map[string]string{"SHEETPIPE_CONCURRENCY": "design=lots"}, `"design=lots" is not stage=number`},
		{"zero concurrency", map[string]string{"SHEETPIPE_CONCURRENCY": "compile=0"}, `"compile=0"`},
		{"zero meta concurrency", map[string]string{"SHEETPIPE_CONCURRENCY": "meta=0"}, `"meta=0"`},
		{"max retries", map[string]string{"SHEETPIPE_MAX_RETRIES": "11"}, "SHEETPIPE_MAX_RETRIES=11"},
		{"listen", map[string]string{"SHEETPIPE_NATS_LISTEN": "4222"}, "SHEETPIPE_NATS_LISTEN"},
		{"http", map[string]string{"SHEETPIPE_HTTP_ADDR": "localhost"}, "SHEETPIPE_HTTP_ADDR"},
		{"log level", map[string]string{"SHEETPIPE_LOG_LEVEL": "loud"}, "SHEETPIPE_LOG_LEVEL"},
		{"provider", map[string]string{"LLM_PROVIDER": "magic"}, "LLM_PROVIDER"},
		{"webhook nets", map[string]string{"SHEETPIPE_WEBHOOK_ALLOW_NETS": "127.0.0.0/8,10.0.0.1"}, `SHEETPIPE_WEBHOOK_ALLOW_NETS: "10.0.0.1" is not a CIDR prefix`},
		{"prices without output", map[string]string{"LLM_PRICES": "gpt-4o-mini=0.15"}, `LLM_PRICES entry "gpt-4o-mini=0.15": want model=input:output`},
		{"price not a number", map[string]string{"LLM_PRICES": "gpt-4o=2.50:ten"}, `LLM_PRICES entry "gpt-4o=2.50:ten": "ten" is not a price`},
		{"negative price", map[string]string{"LLM_PRICES": "gpt-4o=-1:2"}, `"-1" is not a price`},
		{"price twice", map[string]string{"LLM_PRICES": "a=1:2,a=1:3"}, `LLM_PRICES: model "a" is given twice`},
		{"token budget not a number", map[string]string{"SHEETPIPE_JOB_TOKEN_BUDGET": "lots"}, `$SHEETPIPE_JOB_TOKEN_BUDGET="lots" is not a whole number of tokens`},
		{"negative token budget", map[string]string{"SHEETPIPE_JOB_TOKEN_BUDGET": "-5"}, `SHEETPIPE_JOB_TOKEN_BUDGET=-5: must not be negative`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
