// Package config loads the rotator's configuration: one strict YAML file
// (config.example.yaml at the module root documents every key), overlaid by
// ROTATOR_* environment variables, checked as a whole.
//
// Each part of the file is owned by the package that uses it: `unleash:` is
// an [unleash.Config], a file sink a [file.Config], a vault sink a
// [vault.Config]. Such a type carries its YAML keys, its defaults
// (SetDefaults) and its rules (Validate), as package field describes; this
// package decodes straight into it, says where each problem is in the file,
// and checks what spans parts: names, references between targets and
// sinks, policies against the schedule.
//
// Loading never stops at the first mistake: every problem is collected,
// with the file, line and key it comes from (or the environment variable),
// and returned at once as an [*Error], so that one `rotator check` run shows
// everything to fix.
//
// Secrets never appear in the file: it names files that hold them, or the
// environment gives them. [Load] reads no secret file, so a configuration
// can be validated where its secrets are not ([Config.ReadSecrets] reads
// them). Secrets are [secret.Secret] values from the moment they are read,
// and no error ever quotes one, nor the content of a secret file.
package config
