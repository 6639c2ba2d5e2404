package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

// Keys of the labels and annotations the sink writes on its Secrets. They
// all start with [Prefix]; the sink owns every key with that prefix.
const (
	// Prefix starts every label and annotation key the sink owns.
	Prefix = "unleash-rotator.io/"
	// ManagedLabel ("true") marks the Secrets the rotator writes, for
	// `kubectl get secrets -l unleash-rotator.io/managed=true`.
	ManagedLabel = Prefix + "managed"
	// FingerprintAnnotation is the fingerprint of the token.
	FingerprintAnnotation = Prefix + "fingerprint"
	// RotationIDAnnotation is the rotation that created the token (absent
	// for an adopted token).
	RotationIDAnnotation = Prefix + "rotation-id"
	// TokenNameAnnotation is the token's name in Unleash.
	TokenNameAnnotation = Prefix + "token-name"
	// ExpiresAtAnnotation is the token's expiry, RFC 3339 in UTC (absent
	// when it never expires).
	ExpiresAtAnnotation = Prefix + "expires-at"
	// MetadataAnnotation is the whole [rotation.Metadata] as JSON
	// ([sinks.MetadataJSON]); Get reads it.
	MetadataAnnotation = Prefix + "metadata"
)

// maxAttempts bounds Put's read-modify-write loop against writers that keep
// changing keys the sink does not own.
const maxAttempts = 5

// Sink publishes secrets into Kubernetes Secrets. It implements
// [rotation.Sink]; create it with [New]. It is safe for concurrent use.
type Sink struct {
	client    *kube.Client
	namespace string // the default namespace, resolved
	key       string
	fields    sinks.Fields
	restarts  []restartTarget
	logger    *slog.Logger
}

var _ rotation.Sink = (*Sink)(nil)

// New applies the defaults to cfg, checks it, and connects as
// [kube.ClientConfig.Connect] says (reading the kubeconfig or the
// service-account files, without a request). logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes sink: %w", err)
	}
	conn, err := cfg.Connect()
	if err != nil {
		return nil, fmt.Errorf("kubernetes sink: %w", err)
	}
	cs, err := conn.Client()
	if err != nil {
		return nil, fmt.Errorf("kubernetes sink: %w", err)
	}
	return newSink(cfg, cs, conn.Namespace, logger)
}

// newSink builds the sink on a client, with ns the connection's default
// namespace. cfg has its defaults and is valid.
func newSink(cfg Config, client *kube.Client, ns string, logger *slog.Logger) (*Sink, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Namespace != "" {
		ns = cfg.Namespace
	}
	fields, err := sinks.ParseFields(cfg.Fields)
	if err != nil {
		return nil, fmt.Errorf("kubernetes sink: %w", err)
	}
	s := &Sink{client: client, namespace: ns, key: cfg.Key, fields: fields, logger: logger}
	for _, r := range cfg.Restart {
		s.restarts = append(s.restarts, resolveRestart(r, ns))
	}
	return s, nil
}

// Namespace returns the namespace of destinations given as a bare name.
func (s *Sink) Namespace() string { return s.namespace }

// ref is a Secret the sink reads or writes.
type ref struct{ ns, name string }

func (r ref) String() string { return r.ns + "/" + r.name }

// resolve turns a destination path into the Secret it names.
func (s *Sink) resolve(dest string) (ref, error) {
	ns, name, err := splitDest(dest)
	if err != nil {
		return ref{}, err
	}
	if ns == "" {
		ns = s.namespace
	}
	return ref{ns: ns, name: name}, nil
}

// Get returns what dest holds. See [rotation.Sink] and the package
// documentation, which says what Record.Version identifies.
func (s *Sink) Get(ctx context.Context, dest string) (rotation.Record, error) {
	r, err := s.resolve(dest)
	if err != nil {
		return rotation.Record{}, err
	}
	sec, err := s.client.Secrets(r.ns).Get(ctx, r.name)
	switch {
	case apierrors.IsNotFound(err):
		return rotation.Record{}, fmt.Errorf("get %s: %w", r, rotation.ErrEmpty)
	case err != nil:
		return rotation.Record{}, explain("get", r, err)
	}
	tok := string(sec.Data[s.key])
	if tok == "" {
		return rotation.Record{}, fmt.Errorf("get %s: no key %q: %w", r, s.key, rotation.ErrEmpty)
	}
	fp := secret.Fingerprint(tok)
	meta := rotation.Metadata{Fingerprint: fp}
	var j sinks.MetadataJSON
	if raw, ok := sec.Annotations[MetadataAnnotation]; ok && json.Unmarshal([]byte(raw), &j) == nil && j.Fingerprint == fp {
		meta = j.Metadata()
	}
	return rotation.Record{Secret: secret.New(tok), Meta: meta, Version: s.version(sec)}, nil
}

// Put replaces the token in dest with rec if the part of the Secret the sink
// owns is still what Get read as version prev. See [rotation.Sink] and the
// package documentation.
func (s *Sink) Put(ctx context.Context, dest string, rec rotation.Record, prev string) error {
	r, err := s.resolve(dest)
	if err != nil {
		return err
	}
	if rec.Secret.IsZero() {
		return fmt.Errorf("put %s: refusing to write an empty secret", r)
	}
	meta := sinks.NewMetadataJSON(rec.Meta, rec.Secret.Fingerprint())
	fields, err := s.fields.Render(meta.Metadata())
	if err != nil {
		return fmt.Errorf("put %s: %w", r, err)
	}
	owned, err := s.ownedContent(rec.Secret, meta, fields)
	if err != nil {
		return fmt.Errorf("put %s: %w", r, err)
	}
	if err := s.write(ctx, r, owned, prev); err != nil {
		return err
	}
	s.logger.Debug("wrote secret", "secret", r.String(), "fingerprint", meta.Fingerprint)
	if err := s.restart(ctx, r, meta.Fingerprint); err != nil {
		return fmt.Errorf("put %s: %w: %w", r, rotation.ErrAfterWrite, err)
	}
	return nil
}

// owned is what the sink writes into a Secret: its data keys, labels and
// annotations. Everything else in the Secret is kept.
type owned struct {
	data        map[string][]byte
	labels      map[string]string
	annotations map[string]string
}

func (s *Sink) ownedContent(sec secret.Secret, meta sinks.MetadataJSON, fields map[string]string) (owned, error) {
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return owned{}, fmt.Errorf("encode metadata: %w", err)
	}
	o := owned{
		data:   map[string][]byte{s.key: []byte(sec.Reveal())},
		labels: map[string]string{ManagedLabel: "true"},
		annotations: map[string]string{
			FingerprintAnnotation: meta.Fingerprint,
			TokenNameAnnotation:   meta.TokenName,
			MetadataAnnotation:    string(metaJSON),
		},
	}
	if meta.RotationID != "" {
		o.annotations[RotationIDAnnotation] = meta.RotationID
	}
	if !meta.ExpiresAt.IsZero() {
		o.annotations[ExpiresAtAnnotation] = meta.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for k, v := range fields {
		o.data[k] = []byte(v)
	}
	return o, nil
}

// write stores o into Secret r if its owned part is still version prev:
// created when absent, else updated with the resourceVersion just read, so
// that the API server refuses the update if anything changed in between. A
// refusal (409) is read again and retried while the owned part stays prev:
// a writer that only touched keys the sink does not own is not a conflict.
func (s *Sink) write(ctx context.Context, r ref, o owned, prev string) error {
	secrets := s.client.Secrets(r.ns)
	for attempt := 1; ; attempt++ {
		cur, err := secrets.Get(ctx, r.name)
		switch {
		case apierrors.IsNotFound(err):
			if prev != "" {
				return fmt.Errorf("put %s: the Secret was deleted since it was read: %w", r, rotation.ErrConflict)
			}
			_, err = secrets.Create(ctx, o.newSecret(r))
			if err == nil {
				return nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return explain("create", r, err)
			}
		case err != nil:
			return explain("get", r, err)
		default:
			if err := writable(r, cur); err != nil {
				return err
			}
			if v := s.version(cur); v != prev {
				return fmt.Errorf("put %s: the token in it changed since it was read (version %s, expected %s): %w", r, shortVersion(v), shortVersion(prev), rotation.ErrConflict)
			}
			_, err = secrets.Update(ctx, o.applyTo(cur))
			if err == nil {
				return nil
			}
			if !apierrors.IsConflict(err) {
				return explain("update", r, err)
			}
		}
		if attempt == maxAttempts {
			return fmt.Errorf("put %s: the Secret changed under every one of %d attempts: %w", r, maxAttempts, rotation.ErrConflict)
		}
		s.logger.Debug("secret changed between read and write; reading it again", "secret", r.String(), "attempt", attempt)
	}
}

// writable refuses Secrets the sink must not update.
func writable(r ref, cur *corev1.Secret) error {
	if cur.Immutable != nil && *cur.Immutable {
		return fmt.Errorf("put %s: the Secret is immutable, so the token in it can never be replaced: "+
			"delete it and let the rotator create it, or point the destination at another Secret", r)
	}
	if cur.Type != "" && cur.Type != corev1.SecretTypeOpaque {
		return fmt.Errorf("put %s: the Secret has type %s; the sink writes only Opaque Secrets: use another destination", r, cur.Type)
	}
	return nil
}

func (o owned) newSecret(r ref) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: r.ns, Labels: o.labels, Annotations: o.annotations},
		Type:       corev1.SecretTypeOpaque,
		Data:       o.data,
	}
}

// applyTo sets o in a copy of cur: its data keys, and the sink's labels and
// annotations in place of any it wrote before. Other keys are kept.
func (o owned) applyTo(cur *corev1.Secret) *corev1.Secret {
	sec := cur.DeepCopy()
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	maps.Copy(sec.Data, o.data)
	sec.Labels = replaceOwned(sec.Labels, o.labels)
	sec.Annotations = replaceOwned(sec.Annotations, o.annotations)
	return sec
}

// replaceOwned returns m without its keys in [Prefix], plus mine.
func replaceOwned(m, mine map[string]string) map[string]string {
	out := make(map[string]string, len(m)+len(mine))
	for k, v := range m {
		if !strings.HasPrefix(k, Prefix) {
			out[k] = v
		}
	}
	maps.Copy(out, mine)
	return out
}

// version identifies the part of sec the sink owns: the token's data key,
// the configured fields' keys, and the labels and annotations in [Prefix].
// It is "" when sec holds no token, as Put's prev is for an empty
// destination. See the package documentation for why it is not the
// resourceVersion.
func (s *Sink) version(sec *corev1.Secret) string {
	if len(sec.Data[s.key]) == 0 {
		return ""
	}
	h := sha256.New()
	entry := func(kind, k string, v []byte, present bool) {
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00", kind, k, present, len(v))
		h.Write(v)
	}
	for _, k := range append([]string{s.key}, slices.Sorted(maps.Keys(s.fields))...) {
		v, ok := sec.Data[k]
		entry("data", k, v, ok)
	}
	for _, m := range []struct {
		kind string
		m    map[string]string
	}{{"label", sec.Labels}, {"annotation", sec.Annotations}} {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			if strings.HasPrefix(k, Prefix) {
				entry(m.kind, k, []byte(m.m[k]), true)
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// shortVersion abbreviates a version for messages.
func shortVersion(v string) string {
	if v == "" {
		return "(empty)"
	}
	if len(v) > 19 {
		return v[:19]
	}
	return v
}

// explain turns a failed request on Secret r into an error that says what
// to do: which permission is missing, or that the credentials are bad.
func explain(verb string, r ref, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s %s: %w: %s", verb, r, err, secretsHint(r, verb))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s %s: the API server rejected the rotator's credentials (401 Unauthorized): "+
			"the service-account token or the kubeconfig's credentials are invalid or expired", verb, r)
	case apierrors.IsNotFound(err) && verb == "create":
		return fmt.Errorf("%s %s: %w (does namespace %s exist?)", verb, r, err, r.ns)
	}
	return fmt.Errorf("%s %s: %w", verb, r, err)
}

// secretsHint says what RBAC the sink needs for Secret r.
func secretsHint(r ref, verb string) string {
	if verb == "create" {
		return fmt.Sprintf(`a Role in namespace %s needs verbs ["create"] on resource "secrets" (RBAC cannot limit "create" to resourceNames); `+
			`or create the Secret beforehand, and grant ["get", "update"] with resourceNames: [%q]`, r.ns, r.name)
	}
	return fmt.Sprintf(`a Role in namespace %s needs verbs ["get", "update"] on resource "secrets" with resourceNames: [%q] (and "create" to create it)`, r.ns, r.name)
}
