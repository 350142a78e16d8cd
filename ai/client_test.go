package ai

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// newFakeClient returns an openai Client talking to a fake server answering with h.
func newFakeClient(t *testing.T, cfg Config, h fakellm.Handler) (*Client, *fakellm.Server) {
	t.Helper()
	srv := fakellm.New(t, h)
	cfg.BaseURL = srv.URL
	cfg.APIKey = "test-key"
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}

const fencedDoc = "```latex\n" + doc + "\n```"

// stepCase is one Client method under test.
type stepCase struct {
	name      string
	step      string
	model     string // model the request must name
	answer    string // raw answer of the fake server
	wantText  string // cleaned Reply.Text
	wantInMsg string // text the user message must contain
	call      func(ctx context.Context, c *Client, history []Turn) (Reply, error)
}

var stepCases = []stepCase{
	{
		name: "GenerateDesign", step: StepDesign, model: "base-model",
		answer: "Title: Fractions\nSections: 1", wantText: "Title: Fractions\nSections: 1",
		wantInMsg: "fractions for grade 5",
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			return c.GenerateDesign(ctx, h, "fractions for grade 5")
		},
	},
	{
		name: "GenerateLatex", step: StepLatex, model: "latex-model",
		answer: fencedDoc, wantText: doc, wantInMsg: "Title: Fractions",
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			return c.GenerateLatex(ctx, h, "Title: Fractions")
		},
	},
	{
		name: "FixLatex", step: StepFix, model: "base-model",
		answer: "Fixed:\n" + doc, wantText: doc, wantInMsg: "Undefined control sequence.",
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			return c.FixLatex(ctx, h, doc, LatexErrorInfo{Message: "Undefined control sequence.", Line: 3})
		},
	},
	{
		name: "RefinePrompt", step: StepRefine, model: "base-model",
		answer: "Fractions for grade 5, harder.", wantText: "Fractions for grade 5, harder.",
		wantInMsg: "make it harder",
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			return c.RefinePrompt(ctx, h, "make it harder")
		},
	},
	{
		name: "GenerateDescription", step: StepMeta, model: "meta-model",
		answer: "Practises adding fractions.", wantText: "Practises adding fractions.", wantInMsg: `\begin{document}`,
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			return c.GenerateDescription(ctx, h, doc)
		},
	},
	{
		name: "GenerateTags", step: StepMeta, model: "meta-model",
		answer: "Math, Fractions, math", wantText: "math, fractions", wantInMsg: `\begin{document}`,
		call: func(ctx context.Context, c *Client, h []Turn) (Reply, error) {
			_, r, err := c.GenerateTags(ctx, h, doc)
			return r, err
		},
	},
}

var stepConfig = Config{
	Model:      "base-model",
	StepModels: map[string]string{StepLatex: "latex-model", StepMeta: "meta-model"},
}

func TestStepsSendConversation(t *testing.T) {
	earlier := []Turn{
		{Role: RoleSystem, Content: SystemPrompt(TeX{})},
		{Role: RoleUser, Content: "earlier request"},
		{Role: RoleAssistant, Content: "earlier answer"},
	}
	histories := []struct {
		name    string
		history []Turn
	}{
		{"empty history", nil},
		{"earlier turns", earlier},
	}
	for _, sc := range stepCases {
		for _, hc := range histories {
			t.Run(sc.name+"/"+hc.name, func(t *testing.T) {
				c, srv := newFakeClient(t, stepConfig, fakellm.Script(fakellm.Reply{
					Content: sc.answer, PromptTokens: 120, CompletionTokens: 45,
				}))
				reply, err := sc.call(t.Context(), c, hc.history)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				calls := srv.Calls()
				if len(calls) != 1 {
					t.Fatalf("server got %d calls, want 1", len(calls))
				}
				req := calls[0]
				if req.Model != sc.model || req.Step != sc.step || req.User != "sheetpipe/"+sc.step {
					t.Errorf("request model/step/user = %q/%q/%q, want %q/%q/sheetpipe/%s",
						req.Model, req.Step, req.User, sc.model, sc.step, sc.step)
				}
				wantPrefix := hc.history
				if len(wantPrefix) == 0 {
					wantPrefix = []Turn{{Role: RoleSystem, Content: SystemPrompt(TeX{})}}
				}
				if got := turnsOf(req.Messages); len(got) != len(wantPrefix)+1 || !slices.Equal(got[:len(wantPrefix)], wantPrefix) {
					t.Fatalf("request messages = %q, want %q then one user turn", got, wantPrefix)
				}
				last := req.Messages[len(req.Messages)-1]
				if last.Role != RoleUser || !strings.Contains(last.Content, sc.wantInMsg) {
					t.Errorf("last message = %s %q, want a user turn containing %q", last.Role, last.Content, sc.wantInMsg)
				}

				var wantTurns []Turn
				if len(hc.history) == 0 {
					wantTurns = append(wantTurns, Turn{Role: RoleSystem, Content: SystemPrompt(TeX{})})
				}
				wantTurns = append(wantTurns, Turn{Role: RoleUser, Content: last.Content}, Turn{Role: RoleAssistant, Content: sc.answer})
				if !slices.Equal(reply.Turns, wantTurns) {
					t.Errorf("Reply.Turns = %q, want %q", reply.Turns, wantTurns)
				}
				if reply.Text != sc.wantText {
					t.Errorf("Reply.Text = %q, want %q", reply.Text, sc.wantText)
				}
				if reply.Model != sc.model {
					t.Errorf("Reply.Model = %q, want %q", reply.Model, sc.model)
				}
				if reply.Usage != (Usage{PromptTokens: 120, CompletionTokens: 45}) {
					t.Errorf("Reply.Usage = %+v", reply.Usage)
				}
			})
		}
	}
}

func TestHistoryWithoutSystemTurnGetsSystemPrompt(t *testing.T) {
	c, srv := newFakeClient(t, stepConfig, fakellm.Script(fakellm.Reply{Content: "outline"}))
	history := []Turn{{Role: RoleUser, Content: "u"}, {Role: RoleAssistant, Content: "a"}}
	reply, err := c.GenerateDesign(t.Context(), history, "p")
	if err != nil {
		t.Fatalf("GenerateDesign: %v", err)
	}
	got := turnsOf(srv.Calls()[0].Messages)
	want := []Turn{{RoleSystem, SystemPrompt(TeX{})}, history[0], history[1]}
	if len(got) != 4 || !slices.Equal(got[:3], want) {
		t.Errorf("request messages = %q, want %q then the user turn", got, want)
	}
	if len(reply.Turns) != 2 || reply.Turns[0].Role != RoleUser {
		t.Errorf("Reply.Turns = %q, want the user and assistant turns only", reply.Turns)
	}
}

func TestGenerateTagsParsesList(t *testing.T) {
	c, _ := newFakeClient(t, stepConfig, fakellm.Script(fakellm.Reply{Content: "Tags: Math, fractions\nGrade 5, math"}))
	tags, reply, err := c.GenerateTags(t.Context(), nil, doc)
	if err != nil {
		t.Fatalf("GenerateTags: %v", err)
	}
	if want := []string{"math", "fractions", "grade 5"}; !slices.Equal(tags, want) {
		t.Errorf("tags = %q, want %q", tags, want)
	}
	if reply.Text != "math, fractions, grade 5" {
		t.Errorf("Reply.Text = %q", reply.Text)
	}
}

func TestFixLatexMessage(t *testing.T) {
	var src strings.Builder
	for i := 1; i <= 40; i++ {
		if i == 20 {
			src.WriteString("\\badmacro{twenty}\n")
			continue
		}
		src.WriteString("line " + strings.Repeat("x", i%3) + "\n")
	}
	latex := src.String()
	tests := []struct {
		name    string
		e       LatexErrorInfo
		want    []string
		notWant []string
	}{
		{
			name: "known line",
			e: LatexErrorInfo{
				Message: "Undefined control sequence.",
				Snippet: "l.20 \\badmacro\n          {twenty}",
				Line:    20,
			},
			want: []string{
				"Undefined control sequence.",
				"Line: 20",
				"l.20 \\badmacro\n          {twenty}",
				">> 20 | \\badmacro{twenty}",
				"   12 | ", "   28 | ", // 8 lines of context each side
				latex[:len(latex)-1], // the full document
			},
			notWant: []string{"   11 | ", "   29 | "},
		},
		{
			name:    "unknown line",
			e:       LatexErrorInfo{Message: "Emergency stop."},
			want:    []string{"Emergency stop.", "Line: unknown", "\\badmacro{twenty}"},
			notWant: []string{">>", "SOURCE LINES"},
		},
		{
			name: "line near the start",
			e:    LatexErrorInfo{Message: "Missing $ inserted.", Line: 2},
			want: []string{"Line: 2", " 1 | line x", ">>  2 | line xx", " 10 | "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newFakeClient(t, stepConfig, fakellm.Script(fakellm.Reply{Content: doc}))
			if _, err := c.FixLatex(t.Context(), nil, latex, tt.e); err != nil {
				t.Fatalf("FixLatex: %v", err)
			}
			msg := srv.Calls()[0].LastUser()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("fix message lacks %q:\n%s", w, msg)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("fix message contains %q:\n%s", w, msg)
				}
			}
		})
	}
}

func turnsOf(msgs []fakellm.Message) []Turn {
	out := make([]Turn, len(msgs))
	for i, m := range msgs {
		out[i] = Turn{Role: m.Role, Content: m.Content}
	}
	return out
}
