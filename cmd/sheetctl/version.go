package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and revision are set at build time:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.revision=$(git rev-parse HEAD)"
//
// Left empty, they come from the build information Go records (the module's
// version, the VCS revision of a build in a checkout).
var version, revision string

// versionText is the line --version prints:
// "sheetctl <version> (revision <rev>[, modified], <go version>)".
func versionText() string {
	v, rev, modified := version, revision, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && revision == "":
				modified = true
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	if modified {
		rev += ", modified"
	}
	return fmt.Sprintf("sheetctl %s (revision %s, %s)", v, rev, runtime.Version())
}
