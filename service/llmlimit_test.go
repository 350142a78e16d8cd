package service

import (
	"strings"
	"testing"
)

func TestConfigLLMRateLimit(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil || cfg.LLMRPM != 0 || cfg.LLMTPM != 0 {
		t.Fatalf("defaults: rpm %d tpm %d err %v, want 0, 0 (no limit)", cfg.LLMRPM, cfg.LLMTPM, err)
	}
	cfg, err = parse(t, map[string]string{"LLM_RPM": "500", "LLM_TPM": "200000"})
	if err != nil || cfg.LLMRPM != 500 || cfg.LLMTPM != 200000 {
		t.Fatalf("env: rpm %d tpm %d err %v", cfg.LLMRPM, cfg.LLMTPM, err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"negative rpm", map[string]string{"LLM_RPM": "-1"}, "LLM_RPM=-1: must be 0 (no limit) or more"},
		{"negative tpm", map[string]string{"LLM_TPM": "-5"}, "LLM_TPM=-5: must be 0 (no limit) or more"},
		{"rpm not a number", map[string]string{"LLM_RPM": "lots"}, `$LLM_RPM="lots" is not a whole number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestOpenAIProviderRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"nothing set: offline", Config{}, false},
		{"key", Config{OpenAIKey: "k"}, true},
		{"base url", Config{OpenAIBaseURL: "http://x/v1"}, true},
		{"offline forced", Config{LLMProvider: "offline", OpenAIKey: "k"}, false},
		{"openai", Config{LLMProvider: "openai"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := openaiProvider(tc.cfg); got != tc.want {
				t.Fatalf("openaiProvider = %t, want %t", got, tc.want)
			}
		})
	}
}
