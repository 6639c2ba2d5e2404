// Command rotator keeps Unleash API tokens fresh: it finds tokens nearing
// expiry, creates and verifies replacements, publishes them to Kubernetes
// Secrets, Vault or files, and retires the old ones once that is safe. Run `rotator help`.
package main

import (
	"os"
	"runtime/debug"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func main() {
	tuneGC(os.Getenv)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, signals: notifySignals()}
	os.Exit(a.dispatch(os.Args[1:]))
}

// gcPercent is the garbage collector's target (GOGC) unless the environment
// sets one. Go's default, 100, lets the heap grow to twice what is live
// between collections; a pass holds little, so collecting at 50 costs little
// CPU and keeps a pass over 2000 tokens under 40 MB of peak RSS (see
// BENCHMARKS.md).
const gcPercent = 50

// tuneGC sets the collector's target to gcPercent unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
