//go:build crashtest

package main

// This file is compiled only into the binary the crash tests build
// (go build -tags crashtest); the release build never contains it, which
// internal/e2e's TestReleaseBuildHasNoCrashHook checks.
//
// With CRASHTEST_CHECKPOINT set to a checkpoint of a rotation (create,
// created, verified, published, retire), the process kills itself with
// SIGKILL the CRASHTEST_NTH time (default 1) a pass reaches it: no deferred
// function, no lock release, no flush, as when a node dies.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// The hook's settings. They do not start with ROTATOR_: the rotator
// refuses ROTATOR_ variables it does not know.
const (
	crashCheckpointEnv = "CRASHTEST_CHECKPOINT"
	crashNthEnv        = "CRASHTEST_NTH"
)

func init() {
	at := rotation.Checkpoint(os.Getenv(crashCheckpointEnv))
	if at == "" {
		return
	}
	known := []rotation.Checkpoint{rotation.CheckpointCreate, rotation.CheckpointCreated, rotation.CheckpointVerified,
		rotation.CheckpointPublished, rotation.CheckpointRetire}
	nth, err := strconv.Atoi(os.Getenv(crashNthEnv))
	if os.Getenv(crashNthEnv) == "" {
		nth, err = 1, nil
	}
	if !slices.Contains(known, at) || err != nil || nth < 1 {
		fmt.Fprintf(os.Stderr, "crashtest: %s=%q %s=%q: want one of %v, and a count from 1\n",
			crashCheckpointEnv, at, crashNthEnv, os.Getenv(crashNthEnv), known)
		os.Exit(exitUsage)
	}
	var seen atomic.Int64
	onCheckpoint = func(ev rotation.CheckpointEvent) {
		if ev.Checkpoint != at || seen.Add(1) != int64(nth) {
			return
		}
		fmt.Fprintf(os.Stderr, "crashtest: SIGKILL at checkpoint %s #%d %s\n", at, nth, ev.Dest)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never go past the checkpoint
	}
}
