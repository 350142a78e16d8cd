package fakellm

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func newClient(s *Server) *openai.Client {
	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = s.URL
	return openai.NewClientWithConfig(cfg)
}

func chat(ctx context.Context, c *openai.Client, user string) (openai.ChatCompletionResponse, error) {
	return c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model: "test-model",
		User:  user,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "sys"},
			{Role: openai.ChatMessageRoleUser, Content: "hello"},
		},
	})
}

func TestReplyParsedByGoOpenAI(t *testing.T) {
	s := New(t, Script(Reply{Content: "hi there", PromptTokens: 11, CompletionTokens: 3}))
	resp, err := chat(t.Context(), newClient(s), UserPrefix+"design")
	if err != nil {
		t.Fatalf("CreateChatCompletion: %v", err)
	}
	if resp.Object != "chat.completion" || resp.Model != "test-model" || resp.ID == "" {
		t.Errorf("response header fields = %q %q %q", resp.Object, resp.Model, resp.ID)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(resp.Choices))
	}
	ch := resp.Choices[0]
	if ch.Message.Role != "assistant" || ch.Message.Content != "hi there" || ch.FinishReason != openai.FinishReasonStop {
		t.Errorf("choice = %+v", ch)
	}
	if u := resp.Usage; u.PromptTokens != 11 || u.CompletionTokens != 3 || u.TotalTokens != 14 {
		t.Errorf("usage = %+v", u)
	}

	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(calls))
	}
	c := calls[0]
	if c.N != 1 || c.Step != "design" || c.User != "sheetpipe/design" || c.Model != "test-model" {
		t.Errorf("recorded request = %+v", c)
	}
	if len(c.Messages) != 2 || c.Messages[0] != (Message{"system", "sys"}) || c.LastUser() != "hello" {
		t.Errorf("recorded messages = %+v", c.Messages)
	}
}

func TestErrorBodyParsedByGoOpenAI(t *testing.T) {
	tests := []struct {
		name     string
		reply    Reply
		wantMsg  string
		wantType string
	}{
		{"rate limited", Reply{Status: 429, Content: "slow down"}, "slow down", "requests"},
		{"bad request default message", Reply{Status: 400}, "Bad Request", "invalid_request_error"},
		{"unauthorized", Reply{Status: 401}, "Unauthorized", "invalid_request_error"},
		{"server error", Reply{Status: 503, Content: "overloaded"}, "overloaded", "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, Script(tt.reply))
			_, err := chat(t.Context(), newClient(s), "")
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v (%T), want *openai.APIError", err, err)
			}
			if apiErr.HTTPStatusCode != tt.reply.Status || apiErr.Message != tt.wantMsg || apiErr.Type != tt.wantType {
				t.Errorf("APIError = {%d %q %q}, want {%d %q %q}",
					apiErr.HTTPStatusCode, apiErr.Message, apiErr.Type, tt.reply.Status, tt.wantMsg, tt.wantType)
			}
		})
	}
}

func TestRawBody(t *testing.T) {
	s := New(t, Script(Reply{Status: http.StatusBadGateway, RawBody: "<html>bad gateway</html>"}))
	_, err := chat(t.Context(), newClient(s), "")
	var reqErr *openai.RequestError
	if !errors.As(err, &reqErr) || reqErr.HTTPStatusCode != http.StatusBadGateway {
		t.Fatalf("error = %v (%T), want *openai.RequestError with 502", err, err)
	}
}

func TestScriptRepeatsLastReply(t *testing.T) {
	h := Script(Reply{Content: "a"}, Reply{Content: "b"})
	var got []string
	for range 4 {
		got = append(got, h(Request{}).Content)
	}
	if want := []string{"a", "b", "b", "b"}; !slices.Equal(got, want) {
		t.Errorf("contents = %v, want %v", got, want)
	}
}

func TestByStep(t *testing.T) {
	tests := []struct {
		name       string
		m          map[string]Handler
		step       string
		wantStatus int
		wantText   string
	}{
		{"matching step", map[string]Handler{"latex": Script(Reply{Content: "L"})}, "latex", 0, "L"},
		{"fallback", map[string]Handler{AnyStep: Script(Reply{Content: "any"})}, "meta", 0, "any"},
		{"missing step", map[string]Handler{"latex": Script(Reply{Content: "L"})}, "fix", 400, `fakellm: no handler for step "fix"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ByStep(tt.m)(Request{Step: tt.step})
			if r.Status != tt.wantStatus || r.Content != tt.wantText {
				t.Errorf("reply = %+v, want status %d content %q", r, tt.wantStatus, tt.wantText)
			}
		})
	}
}

func TestCallsForCountsBySteps(t *testing.T) {
	s := New(t, Script(Reply{Content: "ok"}))
	c := newClient(s)
	for _, user := range []string{"sheetpipe/design", "sheetpipe/latex", "sheetpipe/latex", "someone-else"} {
		if _, err := chat(t.Context(), c, user); err != nil {
			t.Fatalf("chat %s: %v", user, err)
		}
	}
	for step, want := range map[string]int{"design": 1, "latex": 2, "fix": 0, "": 1} {
		if got := s.CallsFor(step); got != want {
			t.Errorf("CallsFor(%q) = %d, want %d", step, got, want)
		}
	}
	calls := s.Calls()
	for i, c := range calls {
		if c.N != i+1 {
			t.Errorf("call %d has N = %d", i, c.N)
		}
	}
}

func TestDelayHonoursClientCancel(t *testing.T) {
	s := New(t, Script(Reply{Content: "late", Delay: time.Minute}))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := chat(ctx, newClient(s), "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %v despite the client deadline", d)
	}
}

func TestCloseCutsDelayAndRefusesLaterCalls(t *testing.T) {
	s := New(t, Script(Reply{Content: "late", Delay: time.Minute}))
	done := make(chan error, 1)
	go func() {
		_, err := chat(t.Context(), newClient(s), "")
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); len(s.Calls()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("request never reached the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("delayed call succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cut the delayed reply short")
	}
	if _, err := chat(t.Context(), newClient(s), ""); err == nil {
		t.Error("call after Close succeeded")
	}
}

func TestUnknownEndpoint(t *testing.T) {
	s := New(t, Script(Reply{Content: "ok"}))
	_, err := newClient(s).ListModels(t.Context())
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusNotFound {
		t.Fatalf("ListModels error = %v, want a 404 APIError", err)
	}
}
