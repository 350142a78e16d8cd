package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// UserPrefix starts the "user" field of every request package ai sends; the rest
// of the field is the step name.
const UserPrefix = "sheetpipe/"

// Server is a running fake OpenAI-compatible server.
type Server struct {
	// URL is the base URL including "/v1", usable as go-openai's BaseURL.
	URL string

	h       Handler
	srv     *httptest.Server
	stop    chan struct{}
	closeMu sync.Once

	mu    sync.Mutex
	calls []Request
}

// New starts a Server answering with h and closes it when the test ends.
func New(t testing.TB, h Handler) *Server {
	t.Helper()
	if h == nil {
		t.Fatal("fakellm: nil handler")
	}
	s := Start(h)
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, cutting short any reply still in its Delay. Later
// requests fail with a connection error. It is safe to call more than once.
func (s *Server) Close() {
	s.closeMu.Do(func() {
		close(s.stop)
		s.srv.Close()
	})
}

// Calls returns every request received so far, in arrival order.
func (s *Server) Calls() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.calls))
	copy(out, s.calls)
	return out
}

// CallsFor returns how many requests received so far were for step.
func (s *Server) CallsFor(step string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Step == step {
			n++
		}
	}
	return n
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var body chatRequest
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, newErrorBody(http.StatusBadRequest,
			"fakellm: request body is not valid JSON: "+err.Error()))
		return
	}
	if body.Stream {
		writeJSON(w, http.StatusBadRequest, newErrorBody(http.StatusBadRequest,
			"fakellm: streaming is not supported"))
		return
	}
	req := s.record(body)
	reply := s.h(req)
	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.stop:
			panic(http.ErrAbortHandler) // drop the connection: the client sees a network error
		}
	}
	for k, vs := range reply.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	if reply.RawBody != "" {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(reply.RawBody))
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, newErrorBody(status, reply.Content))
		return
	}
	writeJSON(w, status, chatResponse{
		ID:      fmt.Sprintf("chatcmpl-fake-%d", req.N),
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   req.Model,
		Choices: []chatChoice{{
			Message:      responseMessage{Role: "assistant", Content: reply.Content},
			FinishReason: "stop",
		}},
		Usage: chatUsage{
			PromptTokens:     reply.PromptTokens,
			CompletionTokens: reply.CompletionTokens,
			TotalTokens:      reply.PromptTokens + reply.CompletionTokens,
		},
	})
}

// record appends the request to the call log and returns it with its index.
func (s *Server) record(body chatRequest) Request {
	req := Request{Model: body.Model, User: body.User}
	if step, ok := strings.CutPrefix(body.User, UserPrefix); ok {
		req.Step = step
	}
	for _, m := range body.Messages {
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: m.text()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req.N = len(s.calls) + 1
	s.calls = append(s.calls, req)
	return req
}
