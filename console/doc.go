// Package console serves sheetd's web console: a single-page application, built
// from web/ (CodeMirror 6, pdf.js, esbuild; versions pinned by
// web/package-lock.json) into dist/, committed and embedded in the binary.
//
// The console is static: it holds no data and reaches sheetd only through the
// HTTP API and its server-sent event streams, with the API's bearer token, which
// it asks the user for when the API answers 401. Every page is sent with a
// Content-Security-Policy that allows scripts from the console's own origin only
// (no inline script, no eval) and no framing.
package console
