package main

import "github.com/sheetpipe/sheetpipe/internal/buildinfo"

// versionText is the line --version prints: "sheetctl <version> (revision
// <rev>, <go version>)", from the values `make build` links into package
// buildinfo, else from the build information Go records.
func versionText() string { return "sheetctl " + buildinfo.Get().String() }
