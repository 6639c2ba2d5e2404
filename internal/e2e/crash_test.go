package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// The crash matrix: a rotator process is killed with SIGKILL at every
// checkpoint of a rotation, and the next pass must leave every sink holding
// a token that authenticates, no rotation leftover in Unleash, and no token
// retired while a sink served it.
//
// The test binary runs itself as the rotator (crashChild, entered from
// TestMain), with an OnCheckpoint hook that kills the process at the chosen
// checkpoint.

const (
	crashStepEnv = "E2E_CRASH_STEP"
	crashNthEnv  = "E2E_CRASH_NTH"
	crashURLEnv  = "E2E_CRASH_URL"
	crashTokEnv  = "E2E_CRASH_TOKEN"
	crashDirsEnv = "E2E_CRASH_DIRS" // dirA, dirB, lock dir, separated by os.PathListSeparator
	crashBaseEnv = "E2E_CRASH_BASE"
)

// crashTarget is the target every crash case rotates.
func crashTarget(base string) rotation.Target {
	return apiTarget("crash", "^"+base+"$", []string{"default"}, policy(rotation.RetireDelete))
}

// crashChild runs one pass and kills itself at step number nth of the kind
// asked for. It returns only when the pass never reached that step.
func crashChild() int {
	step := rotation.Checkpoint(os.Getenv(crashStepEnv))
	nth, _ := strconv.Atoi(os.Getenv(crashNthEnv))
	dirs := filepathList(os.Getenv(crashDirsEnv))
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := unleash.NewClient(os.Getenv(crashURLEnv), secret.New(os.Getenv(crashTokEnv)))
	if err != nil || len(dirs) != 3 {
		fmt.Fprintln(os.Stderr, "crash child: bad setup:", err)
		return 2
	}
	sinks, err := buildFileSinks(dirs[0], dirs[1], logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	seen := 0
	e, err := buildEngine(c, sinks, dirs[2], logger, func(cfg *rotation.Config) {
		cfg.OnCheckpoint = func(ev rotation.CheckpointEvent) {
			if ev.Checkpoint != step {
				return
			}
			if seen++; seen == nth {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // never continue past the step
			}
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	rep := e.Run(context.Background(), []rotation.Target{crashTarget(os.Getenv(crashBaseEnv))}, rotation.Options{})
	fmt.Fprintf(os.Stderr, "crash child: the pass ended without reaching %s #%d (errors: %v)\n", step, nth, rep.Errors())
	return 3
}

func filepathList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == os.PathListSeparator {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// crash runs a rotator process that is killed at step nth.
func crash(t *testing.T, r *rig, base string, step rotation.Checkpoint, nth int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashStepEnv+"="+string(step), crashNthEnv+"="+strconv.Itoa(nth),
		crashURLEnv+"="+r.srv.URL, crashTokEnv+"="+r.srv.AdminToken.Reveal(),
		crashDirsEnv+"="+r.dirA+string(os.PathListSeparator)+r.dirB+string(os.PathListSeparator)+r.lockTo,
		crashBaseEnv+"="+base)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the child must die, got %v:\n%s", err, out)
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok && status.Signaled() && status.Signal() == syscall.SIGKILL, "killed by SIGKILL at %s #%d; output:\n%s", step, nth, out)
	noSecretsIn(t, string(out), r.srv.AdminToken)
}

func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	servers := map[string]*unleashtest.Server{
		"plain": unleashtest.Require(t),
		// Secure-token mode: every new secret is shown once, at creation,
		// so an interrupted rotation's token can never be adopted.
		"secure": unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_EXPERIMENTAL_SECURE_TOKEN": "true"}}),
	}
	cases := []struct {
		name string
		step rotation.Checkpoint
		nth  int
		// rotated first: the crash comes in the pass that retires.
		retire bool
		// what the first recovery pass does, with a readable (plain) or
		// one-time (secure) secret; orphans are deleted first.
		plain, secure rotation.Action
		orphans       map[string]int
	}{
		{"before create", rotation.CheckpointCreate, 1, false, rotation.ActionRotate, rotation.ActionRotate, nil},
		{"after create", rotation.CheckpointCreated, 1, false, rotation.ActionAdopt, rotation.ActionRotate, map[string]int{"secure": 1}},
		{"after verify", rotation.CheckpointVerified, 1, false, rotation.ActionAdopt, rotation.ActionRotate, map[string]int{"secure": 1}},
		{"mid publish", rotation.CheckpointPublished, 1, false, rotation.ActionPublish, rotation.ActionPublish, nil},
		{"after publish", rotation.CheckpointPublished, 2, false, rotation.ActionNone, rotation.ActionNone, nil},
		{"before retire", rotation.CheckpointRetire, 1, true, rotation.ActionNone, rotation.ActionNone, nil},
	}
	for mode, srv := range servers {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := newRig(t, srv)
				base := uniq("crash")
				old := dueToken(t, r.admin, "default", "development", unleash.TypeBackend, base)
				target := crashTarget(base)
				e := r.engine(nil)
				if tc.retire {
					rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
					require.NoError(t, rep.Errors())
				}

				crash(t, r, base, tc.step, tc.nth)

				// Right after the crash: whatever a sink holds still works.
				dests := map[string]string{"a": "default/development/backend-" + base + ".env", "b": "crash/default-development-backend-" + base + ".json"}
				for sink, dest := range dests {
					rec, err := r.sinks[sink].Get(t.Context(), dest)
					if errors.Is(err, rotation.ErrEmpty) {
						continue
					}
					require.NoError(t, err)
					require.NoError(t, r.admin.Verify(t.Context(), rec.Secret, unleash.ClientAPI), "%s serves a token that still works", sink)
				}

				// Recovery: passes until the lineage is settled.
				for pass := 1; ; pass++ {
					rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
					require.NoError(t, rep.Errors(), "recovery pass %d", pass)
					if pass == 1 {
						d := rep.Results[0].Decision
						want := map[string]rotation.Action{"plain": tc.plain, "secure": tc.secure}[mode]
						assert.Equal(t, want, d.Action, d.Reason)
						assert.Len(t, d.Orphans, tc.orphans[mode], "orphans of the interrupted pass")
					}
					checkInvariants(t, r.admin, r.sinks, dests, base, "default", "development", unleash.TypeBackend)
					if len(lineageTokens(t, r.admin, base, "default", "development", unleash.TypeBackend)) == 1 {
						break
					}
					require.Less(t, pass, 4, "the lineage never settled")
				}
				tokens := lineageTokens(t, r.admin, base, "default", "development", unleash.TypeBackend)
				require.Len(t, tokens, 1, "exactly one token: the replacement; the old one retired, no orphan")
				assert.False(t, tokens[0].Ref().Equal(old.Ref()))
				for _, dest := range []string{"a", "b"} {
					assert.True(t, same(held(t, r.sinks[dest], dests[dest]), tokens[0]))
				}
			})
		}
	}
}
