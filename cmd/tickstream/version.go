package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release of this build, set by the Makefile from
// `git describe --always --dirty`:
//
//	go build -ldflags "-X main.version=$(git describe --always --dirty)" ./cmd/tickstream
//
// Empty in a plain `go build`, whose module version and VCS stamp
// buildVersion reads instead.
var version string

// buildVersion describes this build: the version set by the Makefile, else
// the module version of `go install …@v1.2.3`, else the commit Go stamped
// (vcs.revision, "+dirty" for uncommitted changes), and the Go toolchain.
func buildVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" && ok {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified == "true" {
			rev += "-dirty"
		}
		v = rev
	}
	if v == "" {
		v = "unknown (built without version information)"
	}
	return fmt.Sprintf("%s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
