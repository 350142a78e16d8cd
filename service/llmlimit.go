package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/llmlimit"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// newLLMLimiter returns the rate limit shared by every sheetd on this NATS
// system when LLM_RPM or LLM_TPM is set and the provider is openai; nil (no
// limiter) otherwise. It creates the llm_ratelimit bucket when absent.
func newLLMLimiter(ctx context.Context, cfg Config, js jetstream.JetStream, log *slog.Logger, m *metrics.Metrics) (ai.Limiter, error) {
	if cfg.LLMRPM == 0 && cfg.LLMTPM == 0 {
		return nil, nil
	}
	if !openaiProvider(cfg) {
		log.Warn("LLM_RPM and LLM_TPM apply to the openai provider only: ignored with the offline provider")
		return nil, nil
	}
	l, err := llmlimit.New(ctx, js, llmlimit.Config{RPM: cfg.LLMRPM, TPM: cfg.LLMTPM, Replicas: cfg.Replicas,
		Log: log, Waited: m.LLMWaited})
	if err != nil {
		return nil, fmt.Errorf("llm rate limit: %w", err)
	}
	log.Info("llm rate limit shared on NATS", "rpm", cfg.LLMRPM, "tpm", cfg.LLMTPM, "bucket", llmlimit.Bucket)
	return l, nil
}

// openaiProvider is ai.Config's rule: LLM_PROVIDER, or openai when a key or a
// base URL is set.
func openaiProvider(cfg Config) bool {
	if cfg.LLMProvider != "" {
		return cfg.LLMProvider == ai.ProviderOpenAI
	}
	return cfg.OpenAIKey != "" || cfg.OpenAIBaseURL != ""
}
