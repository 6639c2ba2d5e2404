// Package sinks holds what the sinks share; each sink lives in a package of
// its own below it (file, vault).
package sinks

import (
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// MetadataJSON is [rotation.Metadata] as sinks store it in JSON, in
// snake_case: in a file, a file's sidecar, or KV v1 data. Its fields mirror
// Metadata's one for one, so the two convert into each other, and a field
// added to Metadata fails to compile here until it is stored.
type MetadataJSON struct {
	TokenID     string        `json:"token_id,omitempty"`
	TokenName   string        `json:"token_name,omitempty"`
	TokenType   string        `json:"token_type,omitempty"`
	Kind        rotation.Kind `json:"kind,omitempty"`
	Projects    []string      `json:"projects,omitempty"`
	Environment string        `json:"environment,omitempty"`
	CreatedAt   time.Time     `json:"created_at,omitzero"`
	ExpiresAt   time.Time     `json:"expires_at,omitzero"`
	Fingerprint string        `json:"fingerprint"`
	RotationID  string        `json:"rotation_id,omitempty"`
	Replaces    string        `json:"replaces,omitempty"`
	WrittenAt   time.Time     `json:"written_at,omitzero"`
	VerifiedAt  time.Time     `json:"verified_at,omitzero"`
	WrittenBy   string        `json:"written_by"`
}

// NewMetadataJSON returns what a sink stores for m, written with a secret of
// the given fingerprint: that fingerprint, whatever m says; WrittenBy
// defaulting to [rotation.Writer], since whatever a sink writes, the rotator
// wrote; and times in UTC, so stored data does not depend on the host's zone.
func NewMetadataJSON(m rotation.Metadata, fingerprint string) MetadataJSON {
	j := MetadataJSON(m)
	j.Fingerprint = fingerprint
	if j.WrittenBy == "" {
		j.WrittenBy = rotation.Writer
	}
	for _, t := range []*time.Time{&j.CreatedAt, &j.ExpiresAt, &j.WrittenAt, &j.VerifiedAt} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return j
}

// Metadata converts back.
func (j MetadataJSON) Metadata() rotation.Metadata { return rotation.Metadata(j) }
