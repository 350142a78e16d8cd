package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:embed dist
var dist embed.FS

// Policy is the Content-Security-Policy of every console response: scripts and
// workers only from the console's origin, no inline script and no eval; styles
// may be inline (CodeMirror injects its theme as a style element); the PDF is
// drawn into canvases, so no plugin or frame is needed.
const Policy = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config says how the HTTP API is guarded, so that the console follows the
// same rules.
type Config struct {
	// TokenSet is true when SHEETPIPE_API_TOKEN is set: the console then asks
	// for it (the API answers 401 without it).
	TokenSet bool
	// Public is true when the listener is not loopback-only: without a token the
	// console is then refused, as the API is.
	Public bool
}

// pages are the console's own paths; each serves the application, which
// routes by path, so a job's page (/job/<id>) can be bookmarked and shared.
var pages = []string{"/{$}", "/job/{id}", "/batch/{id}", "/submit", "/overview"}

// Register adds the console's pages and /assets/ to mux.
func Register(mux *http.ServeMux, cfg Config) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embedded tree always has dist
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	assets := http.StripPrefix("/assets/", http.FileServerFS(sub))
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	}
	for _, p := range pages {
		mux.Handle("GET "+p, guard(cfg, http.HandlerFunc(page)))
	}
	mux.Handle("GET /assets/", guard(cfg, assets))
}

// guard refuses like the API on a public address without a token, and sets the
// security headers.
func guard(cfg Config, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs := w.Header()
		hs.Set("Content-Security-Policy", Policy)
		hs.Set("X-Content-Type-Options", "nosniff")
		hs.Set("Referrer-Policy", "no-referrer")
		hs.Set("X-Frame-Options", "DENY")
		if cfg.Public && !cfg.TokenSet {
			hs.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "the console is served on a public address without a token; set SHEETPIPE_API_TOKEN"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
