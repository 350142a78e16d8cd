package ai

import (
	"errors"
	"testing"
	"time"
)

func TestNewProviderDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty config is offline", Config{}, ProviderOffline},
		{"api key selects openai", Config{APIKey: "sk-test"}, ProviderOpenAI},
		{"base url selects openai", Config{BaseURL: "http://127.0.0.1:11434/v1"}, ProviderOpenAI},
		{"explicit offline wins over a key", Config{Provider: ProviderOffline, APIKey: "sk-test"}, ProviderOffline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.Provider(); got != tt.want {
				t.Errorf("Provider() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unknown provider", Config{Provider: "anthropic", APIKey: "k"}},
		{"openai without key or base url", Config{Provider: ProviderOpenAI}},
		{"base url without scheme", Config{BaseURL: "localhost:8080/v1"}},
		{"base url with other scheme", Config{BaseURL: "ftp://example.com/v1"}},
		{"negative timeout", Config{APIKey: "k", Timeout: -time.Second}},
		{"blank model", Config{APIKey: "k", Model: "  "}},
		{"override for unknown step", Config{APIKey: "k", StepModels: map[string]string{"compile": "m"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestModelFor(t *testing.T) {
	overrides := map[string]string{StepLatex: "big-model", StepMeta: "small-model", StepFix: " "}
	c, err := New(Config{APIKey: "k", Model: "base-model", StepModels: overrides})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	overrides[StepDesign] = "changed-after-new"
	want := map[string]string{
		StepDesign: "base-model",
		StepLatex:  "big-model",
		StepFix:    "base-model", // blank override ignored
		StepRefine: "base-model",
		StepMeta:   "small-model",
	}
	for step, model := range want {
		if got := c.ModelFor(step); got != model {
			t.Errorf("ModelFor(%q) = %q, want %q", step, got, model)
		}
	}

	def, err := New(Config{APIKey: "k"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := def.ModelFor(StepDesign); got != DefaultModel {
		t.Errorf("default ModelFor = %q, want %q", got, DefaultModel)
	}
	off, err := New(Config{StepModels: map[string]string{StepLatex: "big-model"}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := off.ModelFor(StepLatex); got != OfflineModel {
		t.Errorf("offline ModelFor = %q, want %q", got, OfflineModel)
	}
}
