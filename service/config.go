package service

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/webhook"
)

// Config is sheetd's whole configuration. Every field has an environment variable
// and a flag (flags win); the comment ends with the default.
type Config struct {
	NATSURL   string // NATS_URL: server or cluster to join; empty starts an embedded server. Default empty.
	NATSCreds string // NATS_CREDS: credentials file for NATS_URL. Default empty.
	NATSUser  string // NATS_USER: user name for NATS_URL (with NATSPassword). Default empty.
	// NATSPassword (NATS_PASSWORD) is NATSUser's password; -h never shows it. Default empty.
	NATSPassword string
	NATSTLSCA    string // NATS_TLS_CA: PEM file of the CAs that sign the NATS servers' certificates. Default empty (system roots).
	NATSTLSCert  string // NATS_TLS_CERT: PEM client certificate for NATS (with NATSTLSKey). Default empty.
	NATSTLSKey   string // NATS_TLS_KEY: PEM private key of NATSTLSCert. Default empty.
	DataDir      string // SHEETPIPE_DATA_DIR: embedded server's storage. Default ./data.
	NATSListen   string // SHEETPIPE_NATS_LISTEN: embedded server's client address; not loopback only with NATSConfig's users. Default 127.0.0.1:4222.
	// NATSConfig (SHEETPIPE_NATS_CONFIG) is a nats-server configuration file for
	// the embedded server (users and permissions, e.g. deploy/nats/auth.conf);
	// sheetd then logs in with NATS_USER/NATS_PASSWORD or NATS_CREDS. Default empty.
	NATSConfig string
	// MaxStreams (SHEETPIPE_MAX_STREAMS) bounds the server-sent event streams
	// open at once; beyond, 503 with Retry-After; 0 takes the default. Default 256.
	MaxStreams int
	HTTPAddr   string // SHEETPIPE_HTTP_ADDR: metrics, health and API. Default 127.0.0.1:8080.
	PublicURL  string // SHEETPIPE_PUBLIC_URL: prefix of pdf_url. Default empty.
	// APIToken (SHEETPIPE_API_TOKEN) is the bearer token that guards /jobs; without
	// it /jobs is served on a loopback HTTP address only. Default empty.
	APIToken string
	Replicas int // SHEETPIPE_REPLICAS: replicas of streams, buckets, consumers. Default 1.
	// Stages (SHEETPIPE_STAGES) is a comma list of stages to run (prompt, design,
	// latex, compile, fix, meta), or "all". Default all.
	Stages string
	// Fairness (docs/fairness.md). Fairness (SHEETPIPE_FAIRNESS): on, users take
	// turns within a priority at every stage, or off, arrival order. Default on.
	// FairWindow (SHEETPIPE_FAIR_WINDOW): tickets of each queue one process
	// holds waiting their turn or in work. Default 1000. UserConcurrency
	// (SHEETPIPE_USER_CONCURRENCY): jobs of one user in work at once in a stage
	// across the cluster, a number or stage=number pairs; 0 no cap. Default 0.
	Fairness        string
	FairWindow      int
	UserConcurrency string

	// Concurrency per stage, e.g. "design=16,latex=16,fix=8,compile=2,meta=4"
	// (SHEETPIPE_CONCURRENCY). Default prompt=32,design=16,latex=16,fix=8,meta=4,compile=CPUs.
	Concurrency     string
	MaxRetries      int           // SHEETPIPE_MAX_RETRIES: retry budget of a request that sets none. Default 3.
	RetryBase       time.Duration // SHEETPIPE_RETRY_BASE: first back-off after a transient failure. Default 1s.
	EventsMaxAge    time.Duration // SHEETPIPE_EVENTS_MAX_AGE: how long JOB_EVENTS keeps events. Default 168h.
	AckWait         time.Duration // SHEETPIPE_ACK_WAIT: redelivery after a silent worker. Default 30s.
	LeaseTTL        time.Duration // SHEETPIPE_LEASE_TTL: a running job's lease without renewal. Default 30s.
	ShutdownTimeout time.Duration // SHEETPIPE_SHUTDOWN_TIMEOUT: wait for in-flight work on SIGTERM. Default 25s.
	SweepInterval   time.Duration // SHEETPIPE_SWEEP_INTERVAL: how often stuck running jobs are looked for. Default 10s.
	SweepGrace      time.Duration // SHEETPIPE_SWEEP_GRACE: how long past its lease a running job waits for its ticket before the sweeper re-enqueues it. Default 2 × ack wait.
	Retention       time.Duration // SHEETPIPE_RETENTION: how long a finished job, its conversation and PDF are kept after its last change ("30d", "12h"; 0 keeps them for ever). Default 30d.
	// Queue limits (docs/limits.md).
	MaxQueued          int           // SHEETPIPE_MAX_QUEUED: unfinished jobs in total beyond which a submission is refused (429); 0: no limit. Default 100000.
	MaxQueuedPerUser   int           // SHEETPIPE_MAX_QUEUED_PER_USER: the same for the jobs of one user_id; 0: no limit. Default 10000.
	QueueRecount       time.Duration // SHEETPIPE_QUEUE_RECOUNT: how often the per-user counts are recounted from the active index and the queue metrics refreshed (0 takes the default). Default 1m.
	JobsStreamMaxMsgs  int           // SHEETPIPE_JOBS_STREAM_MAX_MSGS: messages per subject of the JOBS stream (jobs.prompt, each stage's tickets) beyond which a publish is refused; 0: no bound. Default 1000000.
	JobsStreamMaxBytes int           // SHEETPIPE_JOBS_STREAM_MAX_BYTES: bytes of the whole JOBS stream beyond which a publish is refused; 0: no bound. Default 0.
	// WebhookSecret (SHEETPIPE_WEBHOOK_SECRET) signs webhook POSTs; without it
	// webhooks are off and a request with webhook_url is refused; -h never shows
	// it. Default empty.
	WebhookSecret string
	// WebhookAllowNets (SHEETPIPE_WEBHOOK_ALLOW_NETS) lists CIDR prefixes of
	// internal addresses webhooks may reach anyway, e.g. "127.0.0.0/8" for local
	// testing. Default empty.
	WebhookAllowNets string
	LogLevel         string // SHEETPIPE_LOG_LEVEL: debug, info, warn, error. Default info.
	LogFormat        string // SHEETPIPE_LOG_FORMAT: json or text. Default json.

	LLMProvider    string        // LLM_PROVIDER: openai or offline. Default offline without key and base URL, else openai.
	OpenAIKey      string        // OPENAI_API_KEY. Default empty.
	OpenAIBaseURL  string        // OPENAI_BASE_URL: any OpenAI-compatible server. Default empty (api.openai.com).
	LLMModel       string        // LLM_MODEL. Default gpt-4o-mini.
	LLMModelDesign string        // LLM_MODEL_DESIGN. Default LLM_MODEL.
	LLMModelLatex  string        // LLM_MODEL_LATEX. Default LLM_MODEL.
	LLMModelFix    string        // LLM_MODEL_FIX. Default LLM_MODEL.
	LLMModelRefine string        // LLM_MODEL_REFINE. Default LLM_MODEL.
	LLMModelMeta   string        // LLM_MODEL_META (description and tags). Default LLM_MODEL.
	LLMTimeout     time.Duration // LLM_TIMEOUT: one LLM call. Default 120s.
	// LLMRPM (LLM_RPM) and LLMTPM (LLM_TPM) are the requests and tokens per
	// minute per model that all sheetd on this NATS system send together to an
	// openai provider (docs/ratelimit.md); 0 is no limit. Default 0.
	LLMRPM int
	LLMTPM int

	// Usage and budgets (docs/usage.md).
	LLMPrices      string // LLM_PRICES: model=input:output USD per million tokens, comma list; a model without a price costs 0. Default empty (no prices).
	JobTokenBudget int64  // SHEETPIPE_JOB_TOKEN_BUDGET: tokens a job may use before its LLM calls stop (and the most a request's token_budget may be); 0 is none. Default 0.

	// Provider hints, fallback models and outages (docs/llm.md); 0 takes the default.
	LLMMaxWait              time.Duration // LLM_MAX_WAIT: longest wait a 429/503 may ask for. Default 10m.
	LLMModelFallback        string        // LLM_MODEL_FALLBACK: comma list of models tried in turn. Default none.
	LLMModelDesignFallback  string        // LLM_MODEL_DESIGN_FALLBACK. Default LLM_MODEL_FALLBACK.
	LLMModelLatexFallback   string        // LLM_MODEL_LATEX_FALLBACK. Default LLM_MODEL_FALLBACK.
	LLMModelFixFallback     string        // LLM_MODEL_FIX_FALLBACK. Default LLM_MODEL_FALLBACK.
	LLMModelRefineFallback  string        // LLM_MODEL_REFINE_FALLBACK. Default LLM_MODEL_FALLBACK.
	LLMModelMetaFallback    string        // LLM_MODEL_META_FALLBACK. Default LLM_MODEL_FALLBACK.
	LLMBreakerThreshold     int           // LLM_BREAKER_THRESHOLD: calls in a row finding the provider down that open the breaker. Default 5.
	LLMBreakerProbeInterval time.Duration // LLM_BREAKER_PROBE_INTERVAL: time between probes of the open breaker. Default 15s.

	CompileTimeout time.Duration // COMPILE_TIMEOUT: one compile, all its passes. Default 30s.
	CompileCommand string        // COMPILE_COMMAND: the pdflatex binary. Default pdflatex.
	// CompileSandbox (COMPILE_SANDBOX) is how pdflatex is confined: bwrap (a
	// bubblewrap jail; sheetd refuses to start when it cannot set one up) or
	// none (bare pdflatex, unsafe with untrusted LaTeX). Default bwrap.
	CompileSandbox string
	// CompileFormatCache (COMPILE_FORMAT_CACHE) is the disk the dumped preamble
	// formats may use ("512MiB", "2GiB") or off. Default 512MiB.
	CompileFormatCache string

	envErrs []error // malformed environment values, reported by validate
}

// RegisterFlags binds every field to a flag on fs whose default comes from the
// environment (read with getenv) or else from the built-in default.
func (c *Config) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	str := func(p *string, name, env, def, usage string) {
		v := getenv(env)
		if v == "" {
			v = def
		}
		fs.StringVar(p, name, v, usage+" ($"+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		v := fromEnv(c, getenv, env, def, strconv.Atoi, "a whole number")
		fs.IntVar(p, name, v, usage+" ($"+env+")")
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		v := fromEnv(c, getenv, env, def, time.ParseDuration, "a duration (e.g. 30s, 2m)")
		fs.DurationVar(p, name, v, usage+" ($"+env+")")
	}
	str(&c.NATSURL, "nats-url", "NATS_URL", "", "NATS server or cluster to join; empty starts an embedded server")
	str(&c.NATSCreds, "nats-creds", "NATS_CREDS", "", "NATS credentials file")
	str(&c.NATSUser, "nats-user", "NATS_USER", "", "NATS user name (with -nats-password)")
	c.NATSPassword = getenv("NATS_PASSWORD")
	fs.Var(secret{&c.NATSPassword}, "nats-password", "password of the NATS user ($NATS_PASSWORD)")
	str(&c.NATSTLSCA, "nats-tls-ca", "NATS_TLS_CA", "", "PEM file of the CAs trusted for the NATS servers (default: system roots)")
	str(&c.NATSTLSCert, "nats-tls-cert", "NATS_TLS_CERT", "", "PEM client certificate for NATS (with -nats-tls-key)")
	str(&c.NATSTLSKey, "nats-tls-key", "NATS_TLS_KEY", "", "PEM private key of the NATS client certificate")
	str(&c.DataDir, "data-dir", "SHEETPIPE_DATA_DIR", "./data", "embedded NATS storage directory")
	str(&c.NATSListen, "nats-listen", "SHEETPIPE_NATS_LISTEN", "127.0.0.1:4222", "embedded NATS client address (not loopback: needs -nats-config with users)")
	str(&c.NATSConfig, "nats-config", "SHEETPIPE_NATS_CONFIG", "", "nats-server config file for the embedded server (users, permissions)")
	num(&c.MaxStreams, "max-streams", "SHEETPIPE_MAX_STREAMS", api.DefaultMaxStreams, "server-sent event streams open at once")
	str(&c.HTTPAddr, "http-addr", "SHEETPIPE_HTTP_ADDR", "127.0.0.1:8080", "HTTP address for metrics, health and API")
	c.APIToken = getenv("SHEETPIPE_API_TOKEN")
	fs.Var(secret{&c.APIToken}, "api-token", "bearer token guarding /jobs; required to serve /jobs on a non-loopback address ($SHEETPIPE_API_TOKEN)")
	str(&c.PublicURL, "public-url", "SHEETPIPE_PUBLIC_URL", "", "prefix of pdf_url")
	num(&c.Replicas, "replicas", "SHEETPIPE_REPLICAS", 1, "replicas of JetStream streams, buckets and consumers")
	str(&c.Stages, "stages", "SHEETPIPE_STAGES", "all", "stages this process runs: all, or a comma list of prompt,design,latex,compile,fix,meta")
	str(&c.Concurrency, "concurrency", "SHEETPIPE_CONCURRENCY", "", "per-stage concurrency, e.g. design=16,compile=2,meta=4")
	str(&c.Fairness, "fairness", "SHEETPIPE_FAIRNESS", "on", "users take turns within a priority (on) or arrival order (off)")
	num(&c.FairWindow, "fair-window", "SHEETPIPE_FAIR_WINDOW", consumers.DefaultFairWindow, "tickets of each queue a process holds waiting their turn or in work")
	str(&c.UserConcurrency, "user-concurrency", "SHEETPIPE_USER_CONCURRENCY", "0", "jobs of one user in work at once per stage across the cluster, e.g. 2 or design=1,compile=2 (0: no cap)")
	num(&c.MaxRetries, "max-retries", "SHEETPIPE_MAX_RETRIES", events.DefaultMaxRetries, "retry budget of a request that sets none")
	dur(&c.RetryBase, "retry-base", "SHEETPIPE_RETRY_BASE", time.Second, "first back-off after a transient failure (doubles)")
	dur(&c.EventsMaxAge, "events-max-age", "SHEETPIPE_EVENTS_MAX_AGE", 7*24*time.Hour, "how long JOB_EVENTS keeps events")
	dur(&c.AckWait, "ack-wait", "SHEETPIPE_ACK_WAIT", 30*time.Second, "redelivery delay after a silent worker")
	dur(&c.LeaseTTL, "lease-ttl", "SHEETPIPE_LEASE_TTL", 30*time.Second, "lease of a running job without renewal")
	dur(&c.SweepInterval, "sweep-interval", "SHEETPIPE_SWEEP_INTERVAL", 10*time.Second, "how often stuck running jobs are looked for")
	dur(&c.SweepGrace, "sweep-grace", "SHEETPIPE_SWEEP_GRACE", 0, "wait past an expired lease before re-enqueueing (0: 2 × ack wait)")
	c.Retention = fromEnv(c, getenv, "SHEETPIPE_RETENTION", defaultRetention, parseRetention,
		"a number of days (30d) or a duration (12h, 90m), 0 or more")
	fs.Var(retentionFlag{&c.Retention}, "retention",
		"how long finished jobs, their conversations and PDFs are kept after their last change: a `duration` such as 30d or 12h; 0 keeps them for ever ($SHEETPIPE_RETENTION)")
	num(&c.MaxQueued, "max-queued", "SHEETPIPE_MAX_QUEUED", control.DefaultMaxQueued, "unfinished jobs in total beyond which a submission is refused with 429 (0: no limit)")
	num(&c.MaxQueuedPerUser, "max-queued-per-user", "SHEETPIPE_MAX_QUEUED_PER_USER", control.DefaultMaxQueuedPerUser, "unfinished jobs of one user_id beyond which a submission is refused with 429 (0: no limit)")
	dur(&c.QueueRecount, "queue-recount", "SHEETPIPE_QUEUE_RECOUNT", control.DefaultRecountEvery, "how often per-user queue counts are recounted and repaired")
	num(&c.JobsStreamMaxMsgs, "jobs-stream-max-msgs", "SHEETPIPE_JOBS_STREAM_MAX_MSGS", broker.DefaultJobsMaxMsgsPerSubject, "messages per subject of stream JOBS beyond which a publish is refused (0: no bound)")
	num(&c.JobsStreamMaxBytes, "jobs-stream-max-bytes", "SHEETPIPE_JOBS_STREAM_MAX_BYTES", 0, "bytes of stream JOBS beyond which a publish is refused (0: no bound)")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "SHEETPIPE_SHUTDOWN_TIMEOUT", 25*time.Second, "wait for in-flight work on SIGTERM")
	c.WebhookSecret = getenv("SHEETPIPE_WEBHOOK_SECRET")
	fs.Var(secret{&c.WebhookSecret}, "webhook-secret", "HMAC-SHA256 key of webhook signatures; without it webhooks are off ($SHEETPIPE_WEBHOOK_SECRET)")
	str(&c.WebhookAllowNets, "webhook-allow-nets", "SHEETPIPE_WEBHOOK_ALLOW_NETS", "", "internal CIDR prefixes webhooks may reach anyway, e.g. 127.0.0.0/8")
	str(&c.LogLevel, "log-level", "SHEETPIPE_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "SHEETPIPE_LOG_FORMAT", "json", "json or text")
	str(&c.LLMProvider, "llm-provider", "LLM_PROVIDER", "", "openai or offline (default: offline without key and base URL)")
	c.OpenAIKey = getenv("OPENAI_API_KEY")
	fs.Var(secret{&c.OpenAIKey}, "openai-api-key", "OpenAI API key ($OPENAI_API_KEY)")
	str(&c.OpenAIBaseURL, "openai-base-url", "OPENAI_BASE_URL", "", "OpenAI-compatible base URL")
	str(&c.LLMModel, "llm-model", "LLM_MODEL", "gpt-4o-mini", "model for every step")
	str(&c.LLMModelDesign, "llm-model-design", "LLM_MODEL_DESIGN", "", "model for design (default LLM_MODEL)")
	str(&c.LLMModelLatex, "llm-model-latex", "LLM_MODEL_LATEX", "", "model for LaTeX (default LLM_MODEL)")
	str(&c.LLMModelFix, "llm-model-fix", "LLM_MODEL_FIX", "", "model for fixes (default LLM_MODEL)")
	str(&c.LLMModelRefine, "llm-model-refine", "LLM_MODEL_REFINE", "", "model for refinements (default LLM_MODEL)")
	str(&c.LLMModelMeta, "llm-model-meta", "LLM_MODEL_META", "", "model for description and tags (default LLM_MODEL)")
	dur(&c.LLMTimeout, "llm-timeout", "LLM_TIMEOUT", 120*time.Second, "timeout of one LLM call")
	str(&c.LLMPrices, "llm-prices", "LLM_PRICES", "", "LLM prices, model=input:output US dollars per million tokens, comma list (none built in)")
	c.JobTokenBudget = fromEnv(c, getenv, "SHEETPIPE_JOB_TOKEN_BUDGET", 0, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }, "a whole number of tokens")
	fs.Int64Var(&c.JobTokenBudget, "job-token-budget", c.JobTokenBudget, "tokens a job may use; the most a request's token_budget may be; 0 is none ($SHEETPIPE_JOB_TOKEN_BUDGET)")
	num(&c.LLMRPM, "llm-rpm", "LLM_RPM", 0, "LLM requests per minute per model, shared by every sheetd on this NATS system (0: no limit)")
	num(&c.LLMTPM, "llm-tpm", "LLM_TPM", 0, "LLM tokens per minute per model, shared by every sheetd on this NATS system (0: no limit)")
	dur(&c.LLMMaxWait, "llm-max-wait", "LLM_MAX_WAIT", 10*time.Minute, "longest wait a 429/503 answer may ask for; a longer one tries the fallback model or fails")
	str(&c.LLMModelFallback, "llm-model-fallback", "LLM_MODEL_FALLBACK", "", "comma list of models asked in turn when a step's model is unknown, keeps failing or is rate limited too long")
	str(&c.LLMModelDesignFallback, "llm-model-design-fallback", "LLM_MODEL_DESIGN_FALLBACK", "", "fallback models for design (default LLM_MODEL_FALLBACK)")
	str(&c.LLMModelLatexFallback, "llm-model-latex-fallback", "LLM_MODEL_LATEX_FALLBACK", "", "fallback models for LaTeX (default LLM_MODEL_FALLBACK)")
	str(&c.LLMModelFixFallback, "llm-model-fix-fallback", "LLM_MODEL_FIX_FALLBACK", "", "fallback models for fixes (default LLM_MODEL_FALLBACK)")
	str(&c.LLMModelRefineFallback, "llm-model-refine-fallback", "LLM_MODEL_REFINE_FALLBACK", "", "fallback models for refinements (default LLM_MODEL_FALLBACK)")
	str(&c.LLMModelMetaFallback, "llm-model-meta-fallback", "LLM_MODEL_META_FALLBACK", "", "fallback models for description and tags (default LLM_MODEL_FALLBACK)")
	num(&c.LLMBreakerThreshold, "llm-breaker-threshold", "LLM_BREAKER_THRESHOLD", 5, "LLM calls in a row finding the provider down that open the circuit breaker")
	dur(&c.LLMBreakerProbeInterval, "llm-breaker-probe-interval", "LLM_BREAKER_PROBE_INTERVAL", 15*time.Second, "time between probes of the open LLM circuit breaker")
	dur(&c.CompileTimeout, "compile-timeout", "COMPILE_TIMEOUT", 30*time.Second, "timeout of one compile (all its pdflatex passes)")
	str(&c.CompileCommand, "compile-command", "COMPILE_COMMAND", "pdflatex", "pdflatex binary")
	str(&c.CompileSandbox, "compile-sandbox", "COMPILE_SANDBOX", "bwrap", "bwrap (jail every compile) or none (unsafe)")
	str(&c.CompileFormatCache, "compile-format-cache", "COMPILE_FORMAT_CACHE", "512MiB", "disk for dumped preamble formats (e.g. 512MiB) or off")
}

// fromEnv is env's value parsed, or def when it is unset; a value that does not
// parse is kept for validate to report, and def stands in for it.
func fromEnv[T any](c *Config, getenv func(string) string, env string, def T, parse func(string) (T, error), kind string) T {
	s := getenv(env)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("$%s=%q is not %s", env, s, kind))
		return def
	}
	return v
}

// secret is a string flag whose value never appears in -h output.
type secret struct{ p *string }

func (s secret) Set(v string) error { *s.p = v; return nil }

func (s secret) String() string {
	if s.p != nil && *s.p != "" {
		return "(set)"
	}
	return ""
}

// stages parses Stages.
func (c Config) stages() ([]events.Stage, error) {
	if strings.TrimSpace(c.Stages) == "" || strings.TrimSpace(c.Stages) == "all" {
		return events.Runnable(), nil
	}
	var out []events.Stage
	for _, s := range strings.Split(c.Stages, ",") {
		st := events.Stage(strings.TrimSpace(s))
		if !st.Runnable() {
			return nil, fmt.Errorf("SHEETPIPE_STAGES: unknown stage %q (want all or some of prompt,design,latex,compile,fix,meta)", st)
		}
		out = append(out, st)
	}
	return out, nil
}

// concurrency parses Concurrency ("design=16,compile=2").
func (c Config) concurrency() (map[events.Stage]int, error) {
	out := map[events.Stage]int{}
	for _, part := range strings.Split(c.Concurrency, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		st := events.Stage(strings.TrimSpace(name))
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if !ok || !st.Runnable() || err != nil || n < 1 {
			return nil, fmt.Errorf("SHEETPIPE_CONCURRENCY: %q is not stage=number (stages prompt,design,latex,compile,fix,meta; number >= 1)", part)
		}
		out[st] = n
	}
	return out, nil
}

func (c Config) validate() error {
	errs := append([]error(nil), c.envErrs...)
	if _, err := c.stages(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.concurrency(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateFairness()...)
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_REPLICAS=%d: must be 1..5", c.Replicas))
	}
	if c.MaxRetries < 0 || c.MaxRetries > events.MaxRetriesCap {
		errs = append(errs, fmt.Errorf("SHEETPIPE_MAX_RETRIES=%d: must be 0..%d", c.MaxRetries, events.MaxRetriesCap))
	}
	if c.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_MAX_STREAMS=%d: must be at least 1 (0 takes the default %d)", c.MaxStreams, api.DefaultMaxStreams))
	}
	if c.NATSURL != "" && c.NATSConfig != "" {
		errs = append(errs, errors.New("SHEETPIPE_NATS_CONFIG configures the embedded server, which NATS_URL replaces: set one"))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("SHEETPIPE_NATS_LISTEN=%q: %v", c.NATSListen, err))
		}
		if c.DataDir == "" {
			errs = append(errs, errors.New("SHEETPIPE_DATA_DIR must not be empty with the embedded server"))
		}
	}
	errs = append(errs, c.validateNATSAuth()...)
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("SHEETPIPE_HTTP_ADDR=%q: %v", c.HTTPAddr, err))
	}
	for name, d := range map[string]time.Duration{"SHEETPIPE_RETRY_BASE": c.RetryBase, "SHEETPIPE_EVENTS_MAX_AGE": c.EventsMaxAge,
		"SHEETPIPE_ACK_WAIT": c.AckWait, "SHEETPIPE_LEASE_TTL": c.LeaseTTL, "SHEETPIPE_SWEEP_INTERVAL": c.SweepInterval, "SHEETPIPE_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
		"LLM_TIMEOUT": c.LLMTimeout, "COMPILE_TIMEOUT": c.CompileTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%s: must be positive", name, d))
		}
	}
	if _, err := webhook.ParseNets(c.WebhookAllowNets); err != nil {
		errs = append(errs, fmt.Errorf("SHEETPIPE_WEBHOOK_ALLOW_NETS: %w", err))
	}
	errs = append(errs, c.validateQueue()...)
	if c.SweepGrace < 0 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_SWEEP_GRACE=%s: must not be negative", c.SweepGrace))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("SHEETPIPE_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("SHEETPIPE_LOG_FORMAT=%q: want json or text", c.LogFormat))
	}
	if c.CompileSandbox != "" && c.CompileSandbox != "bwrap" && c.CompileSandbox != "none" {
		errs = append(errs, fmt.Errorf("COMPILE_SANDBOX=%q: want bwrap or none", c.CompileSandbox))
	}
	if c.CompileFormatCache != "" {
		if _, err := latex.ParseFormatCacheSize(c.CompileFormatCache); err != nil {
			errs = append(errs, fmt.Errorf("COMPILE_FORMAT_CACHE=%q: want off or a size such as 512MiB", c.CompileFormatCache))
		}
	}
	if _, err := ai.ParsePrices(c.LLMPrices); err != nil {
		errs = append(errs, err)
	}
	if c.JobTokenBudget < 0 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_JOB_TOKEN_BUDGET=%d: must not be negative (0 is no budget)", c.JobTokenBudget))
	}
	for name, d := range map[string]time.Duration{"LLM_MAX_WAIT": c.LLMMaxWait, "LLM_BREAKER_PROBE_INTERVAL": c.LLMBreakerProbeInterval} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s=%s: must not be negative (0 takes the default)", name, d))
		}
	}
	if c.LLMBreakerThreshold < 0 {
		errs = append(errs, fmt.Errorf("LLM_BREAKER_THRESHOLD=%d: must be at least 1 (0 takes the default 5)", c.LLMBreakerThreshold))
	}
	switch c.LLMProvider {
	case "", "openai", "offline":
	default:
		errs = append(errs, fmt.Errorf("LLM_PROVIDER=%q: want openai or offline", c.LLMProvider))
	}
	if c.LLMRPM < 0 {
		errs = append(errs, fmt.Errorf("LLM_RPM=%d: must be 0 (no limit) or more", c.LLMRPM))
	}
	if c.LLMTPM < 0 {
		errs = append(errs, fmt.Errorf("LLM_TPM=%d: must be 0 (no limit) or more", c.LLMTPM))
	}
	return errors.Join(errs...)
}

// validateNATSAuth checks the settings that log in to NATS_URL, or to the
// embedded server when SHEETPIPE_NATS_CONFIG is set: one way to log in, a
// password with its user, a certificate with its key, every named file present.
// An embedded server without a config file ignores them (they may be set for
// the nats CLI, which reads the same variables).
func (c Config) validateNATSAuth() []error {
	if c.NATSURL == "" && c.NATSConfig == "" {
		return nil
	}
	var errs []error
	if c.NATSCreds != "" && c.NATSUser != "" {
		errs = append(errs, errors.New("NATS_CREDS and NATS_USER: set one way to log in, not both"))
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		errs = append(errs, errors.New("NATS_PASSWORD is set without NATS_USER"))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, errors.New("NATS_TLS_CERT and NATS_TLS_KEY: set both or neither"))
	}
	for _, f := range []struct{ env, path string }{{"NATS_CREDS", c.NATSCreds}, {"SHEETPIPE_NATS_CONFIG", c.NATSConfig},
		{"NATS_TLS_CA", c.NATSTLSCA}, {"NATS_TLS_CERT", c.NATSTLSCert}, {"NATS_TLS_KEY", c.NATSTLSKey}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", f.env, f.path, err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("%s=%q: is a directory, want a file", f.env, f.path))
		}
	}
	return errs
}

// validateQueue checks the queue limits and the JOBS stream's bounds.
func (c Config) validateQueue() []error {
	var errs []error
	for name, v := range map[string]int{"SHEETPIPE_MAX_QUEUED": c.MaxQueued, "SHEETPIPE_MAX_QUEUED_PER_USER": c.MaxQueuedPerUser,
		"SHEETPIPE_JOBS_STREAM_MAX_MSGS": c.JobsStreamMaxMsgs, "SHEETPIPE_JOBS_STREAM_MAX_BYTES": c.JobsStreamMaxBytes} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s=%d: must be 0 (no limit) or more", name, v))
		}
	}
	if c.QueueRecount < 0 {
		errs = append(errs, fmt.Errorf("SHEETPIPE_QUEUE_RECOUNT=%s: must be positive (0 takes the default %s)", c.QueueRecount, control.DefaultRecountEvery))
	}
	if c.JobsStreamMaxMsgs > 0 && (c.MaxQueued == 0 || c.JobsStreamMaxMsgs <= c.MaxQueued) {
		errs = append(errs, fmt.Errorf("SHEETPIPE_JOBS_STREAM_MAX_MSGS=%d: must be more than SHEETPIPE_MAX_QUEUED (%d; 0 is no limit), "+
			"since each unfinished job may hold a ticket in its stage's subject and a stage must never meet the bound", c.JobsStreamMaxMsgs, c.MaxQueued))
	}
	return errs
}

// queueLimit is a limit of control.Config from its setting: 0 (no limit) is -1 there.
func queueLimit(v int) int64 {
	if v == 0 {
		return -1
	}
	return int64(v)
}

// jobsStreamBound is a bound of broker.Resources from its setting: 0 (none) is -1 there.
func jobsStreamBound(v int) int64 { return queueLimit(v) }
