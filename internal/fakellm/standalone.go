package fakellm

import (
	"fmt"
	"net/http"
	"net/http/httptest"
)

// Start starts a Server answering with h outside a test (the benchmark); the
// caller closes it. It panics when h is nil.
func Start(h Handler) *Server {
	if h == nil {
		panic("fakellm: nil handler")
	}
	s := &Server{h: h, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, newErrorBody(http.StatusNotFound,
			fmt.Sprintf("fakellm: unsupported endpoint %s %s", r.Method, r.URL.Path)))
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/v1"
	return s
}
