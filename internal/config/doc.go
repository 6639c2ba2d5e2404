// Package config loads the rotator's configuration: a strict YAML file (the
// schema is config.example.yaml at the module root), overlaid by ROTATOR_*
// environment variables, checked as a whole and turned into ready-to-use
// values such as [rotation.Target].
//
// Loading never stops at the first mistake: every problem is collected, with
// the file, line and key it comes from, and returned at once as an [*Error],
// so that one `rotator check` run shows everything to fix.
//
// Secrets (the Unleash credential, the Edge secret, Vault credentials, the
// webhook URL) are [secret.Secret] values from the moment they are read, and
// no error ever contains one, nor the content of a secret file.
package config
