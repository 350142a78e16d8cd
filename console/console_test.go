package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/console"
)

func serve(t *testing.T, cfg console.Config) string {
	mux := http.NewServeMux()
	console.Register(mux, cfg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Every page and asset carries the policy that forbids inline and foreign
// scripts; the pages a link can name all serve the application.
func TestPagesCarryPolicy(t *testing.T) {
	base := serve(t, console.Config{})
	for _, path := range []string{"/", "/job/0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", "/batch/b1", "/submit", "/overview", "/assets/app.js", "/assets/pdf.worker.mjs"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		script, _, _ := strings.Cut(csp[strings.Index(csp, "script-src"):], ";")
		if script != "script-src 'self'" || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: policy %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no nosniff", path)
		}
		if !strings.HasPrefix(path, "/assets/") && !strings.Contains(string(body), `<script type="module" src="/assets/app.js">`) {
			t.Fatalf("%s does not serve the application", path)
		}
	}
	if resp, _ := http.Get(base + "/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/nothing: %d", resp.StatusCode)
	}
}

// On a public address without a token the console is refused like the API;
// with a token, it is served (and asks for the token).
func TestPublicWithoutTokenRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  console.Config
		want int
	}{
		{"public without token", console.Config{Public: true}, http.StatusForbidden},
		{"public with token", console.Config{Public: true, TokenSet: true}, http.StatusOK},
		{"loopback", console.Config{}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, tc.cfg)
			for _, path := range []string{"/", "/assets/app.js"} {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("%s: %d, want %d", path, resp.StatusCode, tc.want)
				}
				if tc.want == http.StatusForbidden && !strings.Contains(string(body), "SHEETPIPE_API_TOKEN") {
					t.Fatalf("refusal %q does not say what to set", body)
				}
			}
		})
	}
}
