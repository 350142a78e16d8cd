package ai

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Roles of a Turn.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Turn is one message of a conversation.
type Turn struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// Usage is the token count of one call; zero for the offline provider.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Reply is the result of one call.
type Reply struct {
	// Text is the cleaned answer.
	Text string
	// Turns are the turns to append to the conversation: the system turn when the
	// history was empty, then the user turn, then the assistant turn holding the
	// answer exactly as returned.
	Turns []Turn
	// Model is the model that answered: the step's own, one of its fallbacks
	// (fallback.go), or "offline".
	Model string
	// Fallback says why the models before Model were passed over, e.g.
	// "gpt-4o: unknown model (404)"; empty when the step's own model answered.
	Fallback string
	// Usage is the token count reported by the server.
	Usage Usage
}

// Client calls the language model for each step. It is safe for concurrent use.
type Client struct {
	cfg     Config
	system  string         // SystemPrompt(cfg.TeX)
	api     *openai.Client // nil for the offline provider
	breaker *breaker       // nil for the offline provider, which is never down
	errs5xx serverErrors   // 5xx answers in a row, per model
}

// New returns a Client for cfg, or an error wrapping ErrInvalidConfig.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, system: SystemPrompt(cfg.TeX)}
	if cfg.Provider == ProviderOpenAI {
		oc := openai.DefaultConfig(cfg.APIKey)
		if cfg.BaseURL != "" {
			oc.BaseURL = cfg.BaseURL
		}
		// No client-wide timeout: each call's context carries cfg.Timeout.
		oc.HTTPClient = &http.Client{Transport: recordingTransport{next: http.DefaultTransport}}
		c.api = openai.NewClientWithConfig(oc)
		c.breaker = newBreaker(cfg.BreakerThreshold, cfg.BreakerProbeInterval, cfg.BreakerChanged)
	}
	return c, nil
}

// SystemPrompt returns the first turn of every conversation: SystemPrompt of
// the Config's TeX.
func (c *Client) SystemPrompt() string { return c.system }

// Provider returns "openai" or "offline".
func (c *Client) Provider() string { return c.cfg.Provider }

// ModelFor returns the model used for step: its override, the default model, or
// "offline" for the offline provider.
func (c *Client) ModelFor(step string) string {
	if c.cfg.Provider == ProviderOffline {
		return OfflineModel
	}
	if m, ok := c.cfg.StepModels[step]; ok {
		return m
	}
	return c.cfg.Model
}

// call runs one step: it sends history plus the user turn (or asks offline for
// the answer when the provider is offline) and returns the answer cleaned by
// clean in Reply.Text. An answer that cleans to "" is a transient error.
func (c *Client) call(ctx context.Context, step string, history []Turn, user string,
	clean func(string) string, offline func() string) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, fmt.Errorf("ai %s: %w", step, err)
	}
	if err := checkHistory(history); err != nil {
		return Reply{}, permanent(step, err.Error())
	}
	reply := Reply{Model: c.ModelFor(step)}
	var answer string
	if c.api == nil {
		answer = offline()
	} else {
		var err error
		answer, reply.Usage, reply.Model, reply.Fallback, err = c.send(ctx, step, messages(c.system, history, user))
		if err != nil {
			return Reply{}, err
		}
	}
	reply.Text = clean(answer)
	if reply.Text == "" {
		return Reply{}, transient(step, "empty answer")
	}
	if len(history) == 0 {
		reply.Turns = append(reply.Turns, Turn{Role: RoleSystem, Content: c.system})
	}
	reply.Turns = append(reply.Turns, Turn{Role: RoleUser, Content: user}, Turn{Role: RoleAssistant, Content: answer})
	return reply, nil
}

// complete sends one chat completion request, bounded by the per-call timeout.
func (c *Client) complete(ctx context.Context, step, model string, msgs []openai.ChatCompletionMessage) (string, Usage, error) {
	if l := c.cfg.Limiter; l != nil {
		texts := make([]string, len(msgs))
		for i, m := range msgs {
			texts[i] = m.Content
		}
		if err := l.Wait(ctx, model, estimateTokens(texts)); err != nil {
			return "", Usage{}, classify(ctx, step, err)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	callCtx, ans := withAnswer(callCtx)
	resp, err := c.api.CreateChatCompletion(callCtx, openai.ChatCompletionRequest{
		Model:    model,
		Messages: msgs,
		User:     userTag(step),
	})
	usage := Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}
	if l := c.cfg.Limiter; l != nil {
		l.Observe(model, usage.PromptTokens+usage.CompletionTokens, ans.status, ans.header)
	}
	if err != nil {
		return "", Usage{}, classify(ctx, step, err)
	}
	if len(resp.Choices) == 0 || strings.TrimSpace(resp.Choices[0].Message.Content) == "" {
		return "", usage, transient(step, "empty answer")
	}
	return resp.Choices[0].Message.Content, usage, nil
}

// userTag is the OpenAI "user" field of every request for step.
func userTag(step string) string { return "sheetpipe/" + step }

// messages returns the request messages: system unless history already starts
// with a system turn, the history, then the user turn.
func messages(system string, history []Turn, user string) []openai.ChatCompletionMessage {
	msgs := make([]openai.ChatCompletionMessage, 0, len(history)+2)
	if len(history) == 0 || history[0].Role != RoleSystem {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: RoleSystem, Content: system})
	}
	for _, t := range history {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: t.Role, Content: t.Content})
	}
	return append(msgs, openai.ChatCompletionMessage{Role: RoleUser, Content: user})
}

// checkHistory rejects a history with a turn of unknown role.
func checkHistory(history []Turn) error {
	for i, t := range history {
		switch t.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return fmt.Errorf("history turn %d has role %q: want system, user or assistant", i, t.Role)
		}
	}
	return nil
}
