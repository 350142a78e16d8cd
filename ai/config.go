package ai

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Providers.
const (
	ProviderOpenAI  = "openai"
	ProviderOffline = "offline"
)

// Steps, as used in Config.StepModels, ModelFor, the request's "user" field
// ("sheetpipe/<step>") and error messages.
const (
	StepDesign = "design"
	StepLatex  = "latex"
	StepFix    = "fix"
	StepRefine = "refine"
	StepMeta   = "meta"
)

// steps lists every step, in pipeline order.
var steps = []string{StepDesign, StepLatex, StepFix, StepRefine, StepMeta}

const (
	// DefaultModel is the model of every step without an override.
	DefaultModel = "gpt-4o-mini"
	// DefaultTimeout bounds each call.
	DefaultTimeout = 120 * time.Second
	// OfflineModel is the model name reported by the offline provider.
	OfflineModel = "offline"
)

// Config configures a Client. The zero value is a valid offline configuration.
type Config struct {
	// Provider is "openai" or "offline" (LLM_PROVIDER). Default: "offline" when
	// APIKey and BaseURL are both empty, else "openai".
	Provider string
	// APIKey authenticates to the server (OPENAI_API_KEY). Default: "" (no
	// Authorization header, for servers that need none).
	APIKey string
	// BaseURL is any OpenAI-compatible API root, e.g. "http://127.0.0.1:11434/v1"
	// (OPENAI_BASE_URL). Default: go-openai's, "https://api.openai.com/v1".
	BaseURL string
	// Model is used by every step without an entry in StepModels (LLM_MODEL).
	// Default: "gpt-4o-mini".
	Model string
	// StepModels overrides Model per step, keyed "design", "latex", "fix",
	// "refine" or "meta" (LLM_MODEL_DESIGN ... LLM_MODEL_META); blank values are
	// ignored. Default: none.
	StepModels map[string]string
	// Timeout bounds each call, from request to parsed answer (LLM_TIMEOUT).
	// Default: 120s.
	Timeout time.Duration
	// TeX is what the compiler can load; the system prompt names it and the
	// fix prompt offers installed alternatives to a missing package. Default:
	// the zero TeX, a basic TeX Live (nine packages, article).
	TeX TeX
	// Limiter, when set, paces every call to the provider (limiter.go).
	// Default: none.
	Limiter Limiter

	// MaxWait caps the wait a 429 or 503 answer may ask for (LLM_MAX_WAIT): a
	// longer one passes the call to the next model, or fails it. Default 10m.
	MaxWait time.Duration
	// Fallbacks are the models asked, in order, when a step's own model is
	// unknown, keeps failing with 5xx or asks for a wait beyond MaxWait
	// (LLM_MODEL_FALLBACK; fallback.go). Default: none.
	Fallbacks []string
	// StepFallbacks replace Fallbacks per step, keyed like StepModels
	// (LLM_MODEL_<STEP>_FALLBACK). Default: none.
	StepFallbacks map[string][]string
	// BreakerThreshold is how many calls in a row that find the provider down
	// open the circuit breaker (LLM_BREAKER_THRESHOLD; breaker.go). Default 5.
	BreakerThreshold int
	// BreakerProbeInterval is how long the open breaker waits between probes
	// (LLM_BREAKER_PROBE_INTERVAL). Default 15s.
	BreakerProbeInterval time.Duration
	// BreakerChanged, when set, is told each time the breaker opens (true) or
	// closes (false), e.g. for a gauge. Default: none.
	BreakerChanged func(open bool)
}

// ParseModels splits a comma-separated list of models (LLM_MODEL_FALLBACK),
// dropping blanks.
func ParseModels(s string) []string {
	var out []string
	for _, m := range strings.Split(s, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// withDefaults returns c with every unset field at its default. It copies
// StepModels, so later changes by the caller do not leak in, and drops blank
// overrides (an empty LLM_MODEL_<STEP> means "use Model").
func (c Config) withDefaults() Config {
	if c.Provider == "" {
		c.Provider = ProviderOpenAI
		if c.APIKey == "" && c.BaseURL == "" {
			c.Provider = ProviderOffline
		}
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerProbeInterval == 0 {
		c.BreakerProbeInterval = DefaultBreakerProbeInterval
	}
	c.Fallbacks = slices.Clone(c.Fallbacks)
	c.StepFallbacks = maps.Clone(c.StepFallbacks)
	maps.DeleteFunc(c.StepFallbacks, func(_ string, models []string) bool { return len(models) == 0 })
	c.StepModels = maps.Clone(c.StepModels)
	c.TeX = TeX{Packages: slices.Clone(c.TeX.Packages), Classes: slices.Clone(c.TeX.Classes),
		Languages: slices.Clone(c.TeX.Languages), Absent: slices.Clone(c.TeX.Absent)}
	maps.DeleteFunc(c.StepModels, func(_, model string) bool { return strings.TrimSpace(model) == "" })
	return c
}

// validate reports the first bad setting of a defaulted Config.
func (c Config) validate() error {
	switch c.Provider {
	case ProviderOffline:
	case ProviderOpenAI:
		if c.APIKey == "" && c.BaseURL == "" {
			return configErr("provider %q needs OPENAI_API_KEY or OPENAI_BASE_URL", c.Provider)
		}
	default:
		return configErr("provider %q: want %q or %q", c.Provider, ProviderOpenAI, ProviderOffline)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return configErr("base URL %q: want an absolute http(s) URL such as https://api.openai.com/v1", c.BaseURL)
		}
	}
	if strings.TrimSpace(c.Model) == "" {
		return configErr("model is blank")
	}
	if c.Timeout < 0 {
		return configErr("timeout %v is negative", c.Timeout)
	}
	for _, step := range slices.Sorted(maps.Keys(c.StepModels)) {
		if !slices.Contains(steps, step) {
			return configErr("model override for unknown step %q: want one of %s", step, strings.Join(steps, ", "))
		}
	}
	for _, step := range slices.Sorted(maps.Keys(c.StepFallbacks)) {
		if !slices.Contains(steps, step) {
			return configErr("fallback models for unknown step %q: want one of %s", step, strings.Join(steps, ", "))
		}
	}
	for _, m := range append(slices.Clone(c.Fallbacks), slices.Concat(slices.Collect(maps.Values(c.StepFallbacks))...)...) {
		if strings.TrimSpace(m) == "" || strings.Contains(m, ",") {
			return configErr("fallback model %q: want a model name", m)
		}
	}
	if c.MaxWait < 0 || c.BreakerProbeInterval < 0 {
		return configErr("max wait %v and breaker probe interval %v must not be negative", c.MaxWait, c.BreakerProbeInterval)
	}
	if c.BreakerThreshold < 0 {
		return configErr("breaker threshold %d must be at least 1", c.BreakerThreshold)
	}
	return nil
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}
