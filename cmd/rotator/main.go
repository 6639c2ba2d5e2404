// Command rotator keeps Unleash API tokens fresh: it finds tokens nearing
// expiry, creates and verifies replacements, publishes them to Kubernetes
// Secrets, Vault or files, and retires the old ones once that is safe. Run `rotator help`.
package main

import (
	"os"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, signals: notifySignals()}
	os.Exit(a.dispatch(os.Args[1:]))
}
