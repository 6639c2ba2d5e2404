package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

// Sink publishes secrets to a Vault KV mount. It implements
// [rotation.Sink]; create it with [New]. It is safe for concurrent use.
type Sink struct {
	c         *client
	auth      Auth
	tok       tokenState
	mount     string
	kvVersion int
	field     string
	fields    sinks.Fields
	logger    *slog.Logger
	now       func() time.Time

	// writeData is Put's final KV v2 data write. It is a seam for tests,
	// which stop Put between its metadata and data writes, as a crash would.
	writeData func(ctx context.Context, dest string, data map[string]any, cas int) error
}

var _ rotation.Sink = (*Sink)(nil)

// New checks cfg, logs in, checks the token and the mount, and returns the
// sink. It returns every problem with cfg at once. logger may be nil.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Sink, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := configure(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("vault sink: %w", err)
	}
	if s.canLogin() {
		err = s.login(ctx)
	}
	if err == nil {
		err = s.lookupSelf(ctx)
	}
	if err == nil {
		err = s.checkMount(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("vault sink: %w", err)
	}
	if s.kvVersion == 1 {
		s.logger.Warn("KV v1 has no check-and-set: a concurrent writer between read and write is not detected", "path", s.mount)
	}
	return s, nil
}

// configure validates cfg and builds the sink, without any request.
func configure(cfg Config, logger *slog.Logger) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{
		mount: strings.Trim(cfg.Mount, "/"), kvVersion: cfg.KVVersion, field: cfg.Field,
		auth: cfg.Auth.withMethodDefaults(), logger: logger, now: time.Now,
	}
	s.writeData = s.writeDataV2
	s.fields, _ = parseFields(s.field, cfg.Fields, s.kvVersion) // validated above
	if err := s.auth.checkSecrets(); err != nil {
		return nil, err
	}
	var err error
	if s.c, err = newClient(cfg); err != nil {
		return nil, err
	}
	s.setToken(s.auth.Token, 0, 0, false)
	return s, nil
}

// checkMount asks Vault what is mounted at the configured mount, so that a
// wrong mount or KV version fails here rather than writing to the wrong
// place: a KV v2 write to a v1 mount creates a key named "data/...".
func (s *Sink) checkMount(ctx context.Context) error {
	path := "sys/internal/ui/mounts/" + s.mount
	sec, err := call(ctx, s, path, func(ctx context.Context) (*api.Secret, error) {
		return s.c.api.Logical().ReadWithContext(ctx, path)
	})
	switch st := statusOf(err); {
	case st == http.StatusForbidden:
		return fmt.Errorf("no mount at %s, or the token's policies allow nothing under it: check sinks[].mount and the policy (%w)", s.mount, err)
	case err == nil && (sec == nil || sec.Data == nil), st == http.StatusMethodNotAllowed:
		// A Vault without this endpoint (404, which vault/api reads as no
		// secret, or 405): nothing to check.
		s.logger.Debug("cannot ask vault for the mount's KV version", "path", s.mount)
		return nil
	case err != nil:
		return fmt.Errorf("check mount %s: %w", s.mount, err)
	}
	mountPath, _ := sec.Data["path"].(string)
	mountType, _ := sec.Data["type"].(string)
	options, _ := sec.Data["options"].(map[string]any)
	if got := strings.TrimSuffix(mountPath, "/"); got != "" && got != s.mount {
		return fmt.Errorf("%s is not a mount: the KV mount is %s (set sinks[].mount to %s and put the rest in the destination path)", s.mount, got, got)
	}
	if mountType != "kv" && mountType != "generic" {
		return fmt.Errorf("mount %s is a %s secrets engine, not KV: fix sinks[].mount", s.mount, mountType)
	}
	version := 1
	if options["version"] == "2" {
		version = 2
	}
	if version != s.kvVersion {
		return wrongVersion(s.mount, version)
	}
	return nil
}

// wrongVersion says how to fix a KV version mismatch.
func wrongVersion(mount string, actual int) error {
	if actual == 1 {
		return fmt.Errorf("mount %s is KV v1; set kv_version: 1", mount)
	}
	return fmt.Errorf("mount %s is KV v2; set kv_version: 2 (or remove kv_version)", mount)
}

// Get returns what dest holds. See [rotation.Sink].
func (s *Sink) Get(ctx context.Context, dest string) (rotation.Record, error) {
	if err := checkDest(dest); err != nil {
		return rotation.Record{}, err
	}
	if s.kvVersion == 1 {
		return s.getV1(ctx, dest)
	}
	return s.getV2(ctx, dest)
}

// Put replaces what dest holds with rec if it still holds version prev.
// See [rotation.Sink] and the package documentation.
func (s *Sink) Put(ctx context.Context, dest string, rec rotation.Record, prev string) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	if rec.Secret.IsZero() {
		return fmt.Errorf("put %s: refusing to write an empty secret", s.dataPath(dest))
	}
	meta := rec.Meta
	meta.Fingerprint = rec.Secret.Fingerprint()
	if meta.WrittenBy == "" {
		meta.WrittenBy = rotation.Writer
	}
	data, err := s.renderData(rec.Secret, meta)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.dataPath(dest), err)
	}
	if s.kvVersion == 1 {
		err = s.putV1(ctx, dest, data, meta, prev)
	} else {
		err = s.putV2(ctx, dest, data, meta, prev)
	}
	if err != nil {
		return err
	}
	s.logger.Debug("wrote secret", "path", s.dataPath(dest), "fingerprint", meta.Fingerprint)
	return nil
}

// paths returns the API paths the sink reads and writes for dest.
func (s *Sink) paths(dest string) []string {
	if s.kvVersion == 1 {
		return []string{s.dataPath(dest)}
	}
	return []string{s.dataPath(dest), s.metadataPath(dest)}
}

// dataPath is the API path of dest's data.
func (s *Sink) dataPath(dest string) string {
	if s.kvVersion == 1 {
		return s.mount + "/" + dest
	}
	return s.mount + "/data/" + dest
}

// metadataPath is the API path of a KV v2 key's metadata.
func (s *Sink) metadataPath(dest string) string { return s.mount + "/metadata/" + dest }

// checkDest refuses invalid destinations.
func checkDest(dest string) error {
	if err := rotation.ValidatePath(dest); err != nil {
		return fmt.Errorf("destination %q: %w", dest, err)
	}
	return nil
}

// call runs op, a vault/api request on path, after making sure the sink's
// token is fresh, and returns its result, the error turned into the sink's
// by [client.wrap]. A 403 is retried once after a new login, for auth
// methods that can log in: the token may have been revoked, or have
// expired early.
func call[T any](ctx context.Context, s *Sink, path string, op func(context.Context) (T, error)) (T, error) {
	var zero T
	gen, err := s.token(ctx)
	if err != nil {
		return zero, err
	}
	v, err := op(ctx)
	if err = s.c.wrap(ctx, path, err); statusOf(err) != http.StatusForbidden || !s.canLogin() {
		return v, err
	}
	if err := s.reloginAfter(ctx, gen); err != nil {
		return zero, fmt.Errorf("log in again after a request on %s was refused: %w", path, err)
	}
	v, err = op(ctx)
	return v, s.c.wrap(ctx, path, err)
}

// explain turns an error of a request on path into one that says what to
// do. op names the sink operation, dest its destination.
func (s *Sink) explain(op, dest, path string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s %s: %w", op, s.dataPath(dest), err)
	}
	switch {
	case ae.Status == http.StatusForbidden && ae.contains("invalid token"):
		return fmt.Errorf("%s %s: vault rejected the token (invalid, expired or revoked): %w", op, s.dataPath(dest), err)
	case ae.Status == http.StatusForbidden:
		return fmt.Errorf("permission denied on %s: %s", path, s.policyHint(dest))
	case ae.Status == http.StatusMethodNotAllowed && s.kvVersion == 2:
		return fmt.Errorf("%s %s: %w (%w)", op, s.dataPath(dest), err, wrongVersion(s.mount, 1))
	}
	return fmt.Errorf("%s %s: %w", op, s.dataPath(dest), err)
}

// renderData returns the data Put writes: the secret in the configured
// field and the rendered fields.
func (s *Sink) renderData(sec secret.Secret, meta rotation.Metadata) (map[string]any, error) {
	fields, err := s.fields.Render(meta)
	if err != nil {
		return nil, err
	}
	data := map[string]any{s.field: sec.Reveal()}
	for k, v := range fields {
		data[k] = v
	}
	return data, nil
}
