package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Check verifies, without changing anything, that the token may read and
// write dest: it asks Vault for the token's capabilities on the paths Put
// writes. The error lists what is missing.
func (s *Sink) Check(ctx context.Context, dest string) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	const path = "sys/capabilities-self"
	paths := s.paths(dest)
	// One request for all paths; Sys().CapabilitiesSelf asks for one.
	sec, err := call(ctx, s, path, func(ctx context.Context) (*api.Secret, error) {
		return s.c.api.Logical().WriteWithContext(ctx, path, map[string]any{"paths": paths})
	})
	if err != nil {
		if statusOf(err) == http.StatusForbidden {
			return fmt.Errorf("check %s: %w (is the token valid, and does it have the default policy, which allows sys/capabilities-self?)", s.dataPath(dest), err)
		}
		return fmt.Errorf("check %s: %w", s.dataPath(dest), err)
	}
	var got map[string]any
	if sec != nil {
		got = sec.Data
	}
	var missing []string
	for _, p := range paths {
		caps := stringList(got[p])
		if slices.Contains(caps, "root") {
			continue
		}
		var lack []string
		for _, want := range requiredCaps() {
			if !slices.Contains(caps, want) || slices.Contains(caps, "deny") {
				lack = append(lack, want)
			}
		}
		if len(lack) > 0 {
			missing = append(missing, fmt.Sprintf("%s on %s (has %s)", quoteList(lack), p, quoteList(caps)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("check %s: the token lacks %s: %s", s.dataPath(dest), strings.Join(missing, " and "), s.policyHint(dest))
	}
	return nil
}

// requiredCaps returns the capabilities Put and Get need on each path of
// [Sink.paths]: "create" for a new key, "update" for an existing one,
// "read" for Get and for Put's check-and-set.
func requiredCaps() []string { return []string{"create", "read", "update"} }

// policyHint says what the token's policy needs for dest.
func (s *Sink) policyHint(dest string) string {
	caps := quoteList(requiredCaps())
	if s.kvVersion == 1 {
		return fmt.Sprintf("the policy needs %s on %s", caps, s.dataPath(dest))
	}
	return fmt.Sprintf("the policy needs %s on %s and %s on %s", caps, s.dataPath(dest), caps, s.metadataPath(dest))
}

// stringList converts a decoded JSON array of strings.
func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// quoteList formats capabilities as in a policy: ["create","read"].
func quoteList(list []string) string {
	b, _ := json.Marshal(list)
	return string(b)
}
