// Package vault publishes secrets to a HashiCorp Vault KV secrets engine,
// version 2 (the default) or version 1, for consumers that read their Unleash
// token from Vault.
//
// # What the sink reads
//
// Everything comes from [Config]. The sink talks to Vault through
// github.com/hashicorp/vault/api, with an explicit client configuration:
// the configured address, its own HTTP client (TLS settings included, no
// proxy) and timeout, no retries. So VAULT_ADDR, VAULT_CACERT,
// VAULT_SKIP_VERIFY, VAULT_MAX_RETRIES, VAULT_PROXY_ADDR and the other
// VAULT_* variables have no effect, and neither have HTTP(S)_PROXY. The
// sink undoes what vault/api applies anyway: VAULT_TOKEN, VAULT_NAMESPACE
// and VAULT_HEADERS, and VAULT_WRAP_TTL (read at each request). Logins go
// through a second client that never holds a token.
//
// vault/api does read and check the VAULT_* variables when it creates a
// client (opening the files VAULT_CACERT and its kin name), and fails if
// one does not parse: VAULT_MAX_RETRIES=x, a missing VAULT_CACERT file.
// [New] then says which variables are set and to fix or unset them,
// quoting vault/api's error with values replaced by variable names.
//
// The only files the sink reads are [Config.CACert] (once, in [New]) and,
// for Kubernetes auth, [Auth.JWTPath] (at every login, since projected
// service account tokens are rotated). When CACert is empty, Go's system
// roots apply, which Go itself may take from SSL_CERT_FILE and
// SSL_CERT_DIR. TLS verification cannot be turned off. Requests are not
// retried: the rotation engine retries on its next pass.
//
// # KV version 2
//
// The secret's data holds [Config.Field] (default "token") and the rendered
// [Config.Fields]. The rotator's metadata goes into the key's
// custom_metadata, in two slots: the record just written (keys
// "fingerprint", "token-id", ... "written-by") and the one before it (the
// same keys prefixed "previous-"), plus "managed-by". Other custom metadata
// keys are preserved.
//
// [Sink.Put] writes the metadata first and the data second, with
// check-and-set. [Sink.Get] computes the fingerprint of the secret it reads
// and returns the slot whose fingerprint matches. So if Put stops between
// its two writes (a crash, a lost connection, a check-and-set conflict),
// the "previous-" slot still describes the secret Vault serves, and Get
// reports it truthfully. A secret that matches neither slot was not written
// by the rotator (or its metadata was overwritten), and Get returns it with
// only Metadata.Fingerprint set.
//
// [rotation.Record].Version is the KV version number. Put sends it as the
// check-and-set parameter, so a concurrent writer makes Put fail with
// [rotation.ErrConflict] and change nothing but the metadata, which Get then
// ignores because it names another fingerprint. (If two rotators race on
// one key, the metadata of the loser can replace that of the winner, whose
// secret Get then reports as unmanaged: the safe side, since the engine
// does not treat it as its own.)
//
// The policy of the sink's token needs, for a destination path p in mount m:
//
//	path "m/data/p"     { capabilities = ["create", "read", "update"] }
//	path "m/metadata/p" { capabilities = ["create", "read", "update"] }
//
// ("create" on the metadata path because a new key is created by its
// metadata write.) [Sink.Check] verifies these without writing.
//
// # KV version 1
//
// Version 1 has neither custom metadata nor check-and-set. The metadata is
// stored as JSON in the data key "unleash_rotator_metadata", next to the
// secret, so a write stays a single, atomic request. Check-and-set is
// emulated: Record.Version is the SHA-256 of the data's canonical JSON, and
// Put reads the key again just before writing and compares. That is racy: a
// writer that changes the key between that read and the write is not
// detected, so [New] logs a warning for KV v1 sinks. The policy needs
// ["create", "read", "update"] on "m/p".
//
// # Authentication
//
// [Auth] selects a token, AppRole or Kubernetes login. Tokens are kept
// alive lazily, without goroutines: before each request the sink checks the
// token's expiry, and when it is within a third of its TTL (or a minute)
// renews it, or logs in again when renewal is not possible or no longer
// extends it (AppRole, Kubernetes). A static token that cannot be renewed
// and expires within a minute is an error. A request refused with 403 is
// retried once after a new login, for methods that can log in. Tokens with
// no TTL (root tokens) are never renewed.
//
// Errors name the Vault address or path and say what to do; they never
// contain a secret. Log records carry the keys "sink", "path" and
// "fingerprint" only.
package vault
