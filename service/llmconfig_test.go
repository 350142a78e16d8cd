package service

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
)

// TestLLMOutageSettings: the provider-hint, fallback and breaker settings have
// their documented defaults, are read from the environment, and a negative one
// stops sheetd with a message naming it.
func TestLLMOutageSettings(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LLMMaxWait != 10*time.Minute || cfg.LLMBreakerThreshold != 5 || cfg.LLMBreakerProbeInterval != 15*time.Second ||
		cfg.LLMModelFallback != "" || len(stepFallbacks(cfg)) != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = parse(t, map[string]string{"LLM_MAX_WAIT": "30s", "LLM_MODEL_FALLBACK": "a, b,,", "LLM_MODEL_FIX_FALLBACK": "c",
		"LLM_BREAKER_THRESHOLD": "2", "LLM_BREAKER_PROBE_INTERVAL": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LLMMaxWait != 30*time.Second || cfg.LLMBreakerThreshold != 2 || cfg.LLMBreakerProbeInterval != time.Second ||
		!slices.Equal(ai.ParseModels(cfg.LLMModelFallback), []string{"a", "b"}) {
		t.Fatalf("env not applied: %+v", cfg)
	}
	if sf := stepFallbacks(cfg); len(sf) != 1 || !slices.Equal(sf[ai.StepFix], []string{"c"}) {
		t.Fatalf("step fallbacks %v, want fix: [c]", sf)
	}
	for env, want := range map[string]string{"LLM_MAX_WAIT": "LLM_MAX_WAIT=-1s: must not be negative",
		"LLM_BREAKER_PROBE_INTERVAL": "LLM_BREAKER_PROBE_INTERVAL=-1s", "LLM_BREAKER_THRESHOLD": "LLM_BREAKER_THRESHOLD=-1"} {
		v := "-1s"
		if env == "LLM_BREAKER_THRESHOLD" {
			v = "-1"
		}
		if _, err := parse(t, map[string]string{env: v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: error %v, want it to say %q", env, v, err, want)
		}
	}
}
