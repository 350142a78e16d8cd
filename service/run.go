package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/console"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/maintenance"
	"github.com/sheetpipe/sheetpipe/metrics"
	"github.com/sheetpipe/sheetpipe/webhook"
)

// Run starts sheetd and blocks until ctx ends, then shuts down gracefully. It
// returns an error when start-up fails (bad configuration, NATS unreachable, HTTP
// address taken, no pdflatex).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(cfg)
	stages, _ := cfg.stages()
	conc, _ := cfg.concurrency()
	fifo, _ := cfg.fifo()
	userConc, _ := cfg.userConcurrency()

	url := cfg.NATSURL
	if url == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		release, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer release()
	}
	// Both ports are checked before anything starts, so a busy one fails at once.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w (another sheetd? stop it or set SHEETPIPE_HTTP_ADDR)", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	var emb *broker.Embedded
	if url == "" {
		if err := probeListen(cfg.NATSListen); err != nil {
			return err
		}
		emb, err = broker.StartEmbeddedWith(broker.EmbeddedConfig{StoreDir: cfg.DataDir, Listen: cfg.NATSListen, ConfigFile: cfg.NATSConfig}, broker.WithLogger(log))
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
		log.Info("embedded nats started", "url", url, "data_dir", cfg.DataDir)
	}
	nc, err := connect(url, cfg, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := newJetStream(nc)
	if err != nil {
		return err
	}
	provCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = broker.Provision(provCtx, js, broker.Resources{Replicas: cfg.Replicas, EventsMaxAge: cfg.EventsMaxAge, AckWait: cfg.AckWait,
		BatchesMaxAge:         batchesMaxAge(cfg.Retention),
		JobsMaxMsgsPerSubject: jobsStreamBound(cfg.JobsStreamMaxMsgs), JobsMaxBytes: jobsStreamBound(cfg.JobsStreamMaxBytes)})
	cancel()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	store, err := kvstore.New(ctx, js, m)
	if err != nil {
		return err
	}
	storage := storageCheck(emb, store)
	// The prompts name what the compiler can load: taken once, at start.
	tex, err := latex.TakeInventory(ctx, cfg.CompileCommand)
	if err != nil {
		return fmt.Errorf("compiler: %w", err)
	}
	log.Info("tex inventory", "packages", len(tex.Packages), "classes", tex.Classes, "languages", tex.Languages, "absent", tex.Absent)
	limiter, err := newLLMLimiter(ctx, cfg, js, log, m)
	if err != nil {
		return err
	}
	llm, err := ai.New(ai.Config{Provider: cfg.LLMProvider, APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Limiter: limiter,
		TeX: ai.TeX(tex), Model: cfg.LLMModel, Timeout: cfg.LLMTimeout, StepModels: map[string]string{
			"design": cfg.LLMModelDesign, "latex": cfg.LLMModelLatex, "fix": cfg.LLMModelFix,
			"refine": cfg.LLMModelRefine, "meta": cfg.LLMModelMeta},
		MaxWait: cfg.LLMMaxWait, Fallbacks: ai.ParseModels(cfg.LLMModelFallback), StepFallbacks: stepFallbacks(cfg),
		BreakerThreshold: cfg.LLMBreakerThreshold, BreakerProbeInterval: cfg.LLMBreakerProbeInterval, BreakerChanged: m.LLMBreaker})
	if err != nil {
		return fmt.Errorf("llm: %w", err)
	}
	if llm.Provider() == "offline" {
		log.Warn("LLM provider is offline: no OPENAI_API_KEY or OPENAI_BASE_URL set; worksheets come from the built-in deterministic generator")
	}
	var formats int64 // validated: "" is the default
	if cfg.CompileFormatCache != "" {
		formats, _ = latex.ParseFormatCacheSize(cfg.CompileFormatCache)
	}
	comp, err := latex.New(latex.Config{Command: cfg.CompileCommand, Timeout: cfg.CompileTimeout, Sandbox: cfg.CompileSandbox,
		FormatCacheSize: formats})
	if err != nil {
		return fmt.Errorf("compiler: %w", err)
	}
	if comp.Sandbox() == latex.SandboxNone {
		log.Warn("COMPILE SANDBOX OFF: COMPILE_SANDBOX=none runs pdflatex without a jail; LaTeX from users or the LLM can read files and environments sheetd can read")
	}
	hooks, checkWebhook, err := newWebhooks(cfg, js, store, log, m)
	if err != nil {
		return err
	}
	plane, err := control.New(ctx, control.Config{MaxRetries: &cfg.MaxRetries, CheckWebhook: checkWebhook,
		Provider: llm.Provider(), PublicURL: cfg.PublicURL, TokenBudget: cfg.JobTokenBudget,
		MaxQueued: queueLimit(cfg.MaxQueued), MaxQueuedPerUser: queueLimit(cfg.MaxQueuedPerUser), RecountEvery: cfg.QueueRecount},
		control.Deps{JS: js, Store: store, Log: log, Metrics: m})
	if err != nil {
		return err
	}
	defer plane.Stop()
	prices, _ := ai.ParsePrices(cfg.LLMPrices) // validated
	pipe, err := consumers.New(ctx, consumers.Config{Concurrency: conc,
		RetryBase: cfg.RetryBase, AckWait: cfg.AckWait, LeaseTTL: cfg.LeaseTTL, PublicURL: cfg.PublicURL, Prices: prices,
		FIFO: fifo, FairWindow: cfg.FairWindow, UserConcurrency: userConc},
		consumers.Deps{JS: js, Store: store, LLM: llm, Compiler: comp, Submit: plane, Log: log, Metrics: m, Storage: storage,
			LLMHold: llm.Hold})
	if err != nil {
		return err
	}
	loopsCfg := maintenance.Config{
		Sweeper: maintenance.SweeperConfig{Interval: cfg.SweepInterval, Grace: cfg.SweepGrace, AckWait: cfg.AckWait},
		Janitor: maintenance.JanitorConfig{Retention: &cfg.Retention},
	}
	loopsDeps := maintenance.Deps{JS: js, Store: store, Log: log, Metrics: m}

	public := !isLoopback(ln.Addr())
	if public && cfg.APIToken == "" {
		log.Warn("HTTP address is not loopback and SHEETPIPE_API_TOKEN is not set: /jobs answers 403", "http", ln.Addr().String())
	}
	controlAPI := api.New(plane, api.Config{Token: cfg.APIToken, Public: public, MaxStreams: cfg.MaxStreams}, log)
	var started atomic.Bool // set once startWork is done: /readyz waits for it
	mux := newMux(reg, nc, js, storage, func() error {
		if !started.Load() {
			return errStarting
		}
		return errors.Join(llmReady(llm.Available, stages), pipe.Consuming())
	}, comp.Sandbox())
	controlAPI.Register(mux)
	controlAPI.RegisterInsight(mux, plane)
	console.Register(mux, console.Config{TokenSet: cfg.APIToken != "", Public: public})
	// Streams of events end when the server shuts down, not at the deadline.
	httpCtx, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		BaseContext: func(net.Listener) context.Context { return httpCtx }}
	srv.RegisterOnShutdown(endStreams)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err)
		}
	}()
	loops, err := startWork(ctx, pipe, loopsCfg, loopsDeps, controlAPI, hooks, nc, stages)
	started.Store(err == nil)
	if err != nil {
		_ = srv.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		pipe.Stop(stopCtx)
		if loops != nil {
			loops.Stop(stopCtx)
		}
		if hooks != nil {
			hooks.Stop(stopCtx)
		}
		cancel()
		return err
	}
	pollerCtx, stopPoller := context.WithCancel(ctx)
	go pollPending(pollerCtx, js, stages, m)
	log.Info("sheetd ready", "http", ln.Addr().String(), "nats", url, "stages", cfg.Stages, "llm_provider", llm.Provider(), "webhooks", hooks != nil)

	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	stopPoller()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelStop()
	if err := controlAPI.Stop(); err != nil {
		log.Warn("stop control service", "error", err)
	}
	pipe.Stop(stopCtx)
	// After the stages: their last naks can exhaust a ticket's deliveries, which
	// the max-deliveries handler must still see.
	loops.Stop(stopCtx)
	if hooks != nil {
		hooks.Stop(stopCtx)
	}
	_ = srv.Shutdown(stopCtx)
	if err := nc.Drain(); err != nil {
		log.Warn("drain nats", "error", err)
	}
	waitClosed(nc, 5*time.Second)
	log.Info("stopped")
	return nil
}

// newWebhooks builds the webhook sender when a secret is set, and the check of a
// request's webhook_url: the sender's address policy, or a refusal naming the
// missing secret.
func newWebhooks(cfg Config, js jetstream.JetStream, store *kvstore.Store, log *slog.Logger, m *metrics.Metrics) (*webhook.Sender, func(context.Context, string) error, error) {
	if cfg.WebhookSecret == "" {
		return nil, func(context.Context, string) error { return webhook.ErrDisabled }, nil
	}
	allow, _ := webhook.ParseNets(cfg.WebhookAllowNets)
	hooks, err := webhook.New(webhook.Config{Secret: cfg.WebhookSecret, Guard: webhook.NewGuard(allow)},
		webhook.Deps{JS: js, Store: store, Log: log, Metrics: m})
	if err != nil {
		return nil, nil, err
	}
	return hooks, hooks.CheckURL, nil
}

// errStarting is /readyz's answer until the stages, the loops, the webhook
// sender and the control service have all started.
var errStarting = errors.New("starting: the stages, loops and control service are not all up yet")

// startWork starts the background loops, the stages, the webhook sender (when
// there is one) and then the control service, which answers on NATS. It
// returns the loops once they run, even when a later start fails.
func startWork(ctx context.Context, pipe *consumers.Pipeline, loopsCfg maintenance.Config, loopsDeps maintenance.Deps,
	controlAPI *api.API, hooks *webhook.Sender, nc *nats.Conn, stages []events.Stage) (*maintenance.Loops, error) {
	// The loops first, as before the stages were apart: the max-deliveries
	// handler hears every advisory of the stages' consumers.
	loops, err := maintenance.Start(ctx, loopsCfg, loopsDeps)
	if err != nil {
		return nil, err
	}
	if err := pipe.Start(ctx, stages...); err != nil {
		return loops, err
	}
	if hooks != nil {
		if err := hooks.Start(ctx); err != nil {
			return loops, fmt.Errorf("start webhook sender: %w", err)
		}
	}
	if err := controlAPI.StartMicro(nc); err != nil {
		return loops, fmt.Errorf("start control service: %w", err)
	}
	return loops, nil
}

// storageCheck is nil while the NATS server's storage takes writes: the
// embedded server's disk guard says so; of an external server sheetd only
// knows the writes it refused lately (kvstore.Store.StorageErr).
func storageCheck(emb *broker.Embedded, store *kvstore.Store) func() error {
	if emb != nil {
		return emb.StorageErr
	}
	return store.StorageErr
}

// isLoopback reports whether addr only accepts connections from this host.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func waitClosed(nc *nats.Conn, d time.Duration) {
	deadline := time.Now().Add(d)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func newLogger(cfg Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// batchesMaxAge keeps batch records as long as finished jobs are kept (for ever
// when the retention is 0).
func batchesMaxAge(retention time.Duration) time.Duration {
	if retention == 0 {
		return -1
	}
	return retention
}

// stepFallbacks are the per-step fallback models of cfg (LLM_MODEL_<STEP>_FALLBACK);
// a step without its own takes LLM_MODEL_FALLBACK.
func stepFallbacks(cfg Config) map[string][]string {
	out := map[string][]string{}
	for step, list := range map[string]string{ai.StepDesign: cfg.LLMModelDesignFallback, ai.StepLatex: cfg.LLMModelLatexFallback,
		ai.StepFix: cfg.LLMModelFixFallback, ai.StepRefine: cfg.LLMModelRefineFallback, ai.StepMeta: cfg.LLMModelMetaFallback} {
		if models := ai.ParseModels(list); len(models) > 0 {
			out[step] = models
		}
	}
	return out
}
