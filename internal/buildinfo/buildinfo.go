// Package buildinfo says which build of sheetpipe is running: its version, the
// revision it was built from and the Go version that built it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile's build target:
//
//	-ldflags "-X github.com/sheetpipe/sheetpipe/internal/buildinfo.version=$(git describe --always --dirty)
//	          -X github.com/sheetpipe/sheetpipe/internal/buildinfo.revision=$(git rev-parse HEAD)"
//
// Left empty (a plain go build or go install), Get reads what the Go toolchain
// recorded instead.
var (
	version  string
	revision string
)

// Info is one build's identity.
type Info struct {
	// Version is `git describe --always --dirty` at build time, else the main
	// module's version as the toolchain recorded it, else "devel".
	Version string
	// Revision is the commit built from (vcs.revision, with "-dirty" when the
	// tree had changes), else "unknown".
	Revision string
	// GoVersion is the Go version that built the binary ("go1.26.0").
	GoVersion string
}

// Get returns the running binary's build info.
func Get() Info {
	i := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		if i.Revision == "" {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			i.Revision = rev
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Revision == "" {
		i.Revision = "unknown"
	}
	return i
}

// String is the line `sheetd --version` prints after the program's name:
// "v1.2.0-3-gabc1234 (revision abc1234..., go1.26.0)".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
}
