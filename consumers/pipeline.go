package consumers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
	"github.com/sheetpipe/sheetpipe/metrics"
	"github.com/sheetpipe/sheetpipe/worker"
)

// llm is what the stages need of the LLM client (package ai).
type llm interface {
	Provider() string
	ModelFor(step string) string
	GenerateDesign(ctx context.Context, history []ai.Turn, prompt string, refs ...ai.Reference) (ai.Reply, error)
	GenerateLatex(ctx context.Context, history []ai.Turn, design string, refs ...ai.Reference) (ai.Reply, error)
	FixLatex(ctx context.Context, history []ai.Turn, latex string, e ai.LatexErrorInfo) (ai.Reply, error)
	RefinePrompt(ctx context.Context, history []ai.Turn, instruction string) (ai.Reply, error)
	GenerateDescription(ctx context.Context, history []ai.Turn, latex string) (ai.Reply, error)
	GenerateTags(ctx context.Context, history []ai.Turn, latex string) ([]string, ai.Reply, error)
}

// submitter is what the prompt stage needs of the control plane
// (control.Plane): a request on jobs.prompt makes a job as a submit does.
type submitter interface {
	Prepare(ctx context.Context, req events.JobRequest, invalid error) (*events.Job, error)
	Create(ctx context.Context, j *events.Job) (uint64, error)
	Created(ctx context.Context, j *events.Job, rev uint64)
	HandOn(ctx context.Context, j *events.Job) error
	Duplicate(ctx context.Context, id string, redelivered bool) error
}

// compiler turns LaTeX into a PDF; a document error is a *latex.LatexError.
type compiler interface {
	Compile(ctx context.Context, source string) ([]byte, error)
}

// Deps are the parts the pipeline is built from.
type Deps struct {
	JS       jetstream.JetStream
	Store    *kvstore.Store
	LLM      llm
	Compiler compiler
	// Submit makes the jobs of the requests on jobs.prompt (control.Plane);
	// needed by the prompt stage only.
	Submit  submitter
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Storage is nil while the server's storage takes writes, else why not; a
	// stage paused by a storage refusal fetches again only once it is nil.
	// Default Store.StorageErr.
	Storage func() error
	// LLMHold is nil while the LLM stages (design, latex, fix, meta) may fetch
	// tickets, else why not (the LLM client's circuit breaker is open:
	// ai.Client.Hold). Default: never held.
	LLMHold func() error
}

// Pipeline runs the stages of this process.
type Pipeline struct {
	cfg   Config
	js    jetstream.JetStream
	store *kvstore.Store
	// x writes every change of a job (package lifecycle).
	x         *lifecycle.Executor
	llm       llm
	compile   compiler
	submit    submitter
	pdfs      jetstream.ObjectStore
	cache     *pdfCache
	recent    *recent[events.Job]
	convs     *recent[events.Conversation]
	log       *slog.Logger
	metrics   *metrics.Metrics
	storage   func() error
	userSlots jetstream.KeyValue // places of the per-user cap (fairness), nil without one
	llmHold   func() error       // Deps.LLMHold; nil: never held

	mu      sync.Mutex
	runners []*worker.Runner
}

// New checks cfg and binds the object store.
func New(ctx context.Context, cfg Config, d Deps) (*Pipeline, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("consumers config: %w", err)
	}
	pdfs, err := broker.PDFs(ctx, d.JS)
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := &pdfCache{log: log}
	if !cfg.NoCompileCache {
		if cache.kv, err = kvstore.OpenPDFCache(ctx, d.JS); err != nil {
			return nil, err
		}
	}
	storage := d.Storage
	if storage == nil {
		storage = d.Store.StorageErr
	}
	p := &Pipeline{cfg: cfg, js: d.JS, store: d.Store, llm: d.LLM, compile: d.Compiler, submit: d.Submit,
		pdfs: pdfs, cache: cache, recent: newRecent[events.Job](recentMax), convs: newRecent[events.Conversation](recentMax), log: log, metrics: d.Metrics, storage: storage, llmHold: d.LLMHold}
	p.x = lifecycle.NewExecutor(d.Store, publisher{p}, log, d.Metrics)
	if d.LLM != nil {
		d.Metrics.InitLLM(d.LLM.ModelFor)
	}
	for _, n := range cfg.UserConcurrency {
		if n > 0 {
			if p.userSlots, err = d.JS.KeyValue(ctx, broker.BucketUserSlots); err != nil {
				return nil, fmt.Errorf("bind bucket %s: %w", broker.BucketUserSlots, err)
			}
			break
		}
	}
	return p, nil
}

// Start runs the given stages (all when none are named: the pipeline's and meta)
// until Stop. The background loops that serve every stage (sweeper, janitor,
// max-deliveries handler, dependents) are package maintenance's.
func (p *Pipeline) Start(ctx context.Context, stages ...events.Stage) error {
	if len(stages) == 0 {
		stages = events.Runnable()
	}
	handlers := map[events.Stage]handlerFunc{
		events.StagePrompt:  p.handlePrompt,
		events.StageDesign:  p.handleDesign,
		events.StageLatex:   p.handleLatex,
		events.StageCompile: p.handleCompile,
		events.StageFix:     p.handleFix,
		events.StageMeta:    p.handleMeta,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range stages {
		handle, ok := handlers[st]
		if !ok {
			return fmt.Errorf("start stage %q: no such stage", st)
		}
		if st == events.StagePrompt && p.submit == nil {
			return fmt.Errorf("start stage %s: no control plane to make jobs (Deps.Submit)", st)
		}
		r, err := p.startStage(ctx, st, handle)
		if err != nil {
			return fmt.Errorf("start stage %s: %w", st, err)
		}
		p.runners = append(p.runners, r)
		p.log.InfoContext(ctx, "stage started", "step", st, "concurrency", p.cfg.Concurrency[st])
	}
	return nil
}

// Stop stops every stage: no new messages, in-flight work finishes until ctx
// ends and is then cancelled and handed back.
func (p *Pipeline) Stop(ctx context.Context) {
	p.mu.Lock()
	runners := p.runners
	p.runners = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() { r.Stop(ctx) })
	}
	wg.Wait()
}
