package kubernetes

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// newTestSink builds a sink for the API server on client configuration
// cfg, with default namespace ns.
func newTestSink(t *testing.T, cfg *rest.Config, ns string, c Config) *Sink {
	t.Helper()
	c.SetDefaults()
	require.NoError(t, c.Validate())
	cs, err := kube.NewClient(cfg)
	require.NoError(t, err)
	s, err := newSink(c, cs, ns, nil)
	require.NoError(t, err)
	return s
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// record is what the engine would write for a token whose plaintext is
// tok. Its metadata names the token by a hash, never by tok.
func record(tok string) rotation.Record {
	id := strings.TrimPrefix(secret.Fingerprint(tok), "sha256:")
	return rotation.Record{Secret: secret.New(tok), Meta: rotation.Metadata{
		TokenID: "id-" + id, TokenName: "checkout-" + id, TokenType: "backend", Kind: rotation.KindAPIToken,
		Projects: []string{"default"}, Environment: "production",
		CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour), RotationID: "rot-" + id, WrittenAt: t0.Add(time.Minute),
	}}
}

func getSecret(t *testing.T, c kubernetes.Interface, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := c.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return s
}

func TestPutCreatesSecretGetReadsItBack(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	s := newTestSink(t, cp.AdminConfig(), ns, Config{Fields: map[string]string{
		"url": "https://unleash.example.com/api", "expires": "{{.ExpiresAt}}",
	}})
	ctx := t.Context()

	_, err := s.Get(ctx, "unleash-checkout")
	require.ErrorIs(t, err, rotation.ErrEmpty)

	rec := record("tok-1")
	require.NoError(t, s.Put(ctx, "unleash-checkout", rec, ""))

	got := getSecret(t, cp.AdminClient(t), ns, "unleash-checkout")
	assert.Equal(t, corev1.SecretTypeOpaque, got.Type)
	assert.Equal(t, map[string][]byte{
		"token": []byte("tok-1"), "url": []byte("https://unleash.example.com/api"), "expires": []byte("2026-12-22T10:00:00Z"),
	}, got.Data)
	assert.Equal(t, map[string]string{ManagedLabel: "true"}, got.Labels)
	fp := secret.Fingerprint("tok-1")
	assert.Equal(t, fp, got.Annotations[FingerprintAnnotation])
	assert.Equal(t, rec.Meta.RotationID, got.Annotations[RotationIDAnnotation])
	assert.Equal(t, rec.Meta.TokenName, got.Annotations[TokenNameAnnotation])
	assert.Equal(t, "2026-12-22T10:00:00Z", got.Annotations[ExpiresAtAnnotation])
	var mj sinks.MetadataJSON
	require.NoError(t, json.Unmarshal([]byte(got.Annotations[MetadataAnnotation]), &mj))
	assert.Equal(t, sinks.NewMetadataJSON(rec.Meta, fp), mj)
	for k, v := range got.Annotations {
		assert.NotContains(t, v, "tok-1", "annotation %s holds the token", k)
	}

	back, err := s.Get(ctx, "unleash-checkout")
	require.NoError(t, err)
	assert.True(t, back.Secret.Equal(rec.Secret))
	want := rec.Meta
	want.Fingerprint, want.WrittenBy = fp, rotation.Writer
	assert.Equal(t, want, back.Meta)
	assert.True(t, back.Managed())
	assert.NotEmpty(t, back.Version)

	// The next rotation replaces it, with the version Get returned.
	require.NoError(t, s.Put(ctx, "unleash-checkout", record("tok-2"), back.Version))
	back2, err := s.Get(ctx, "unleash-checkout")
	require.NoError(t, err)
	assert.Equal(t, "tok-2", back2.Secret.Reveal())
	assert.NotEqual(t, back.Version, back2.Version)
}

func TestGetUnmanagedAndEmpty(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	admin := cp.AdminClient(t)
	s := newTestSink(t, cp.AdminConfig(), ns, Config{})
	ctx := t.Context()
	for name, data := range map[string]map[string]string{
		"hand-made": {"token": "typed-by-hand"},
		"no-token":  {"password": "x"},
	} {
		_, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	got, err := s.Get(ctx, "hand-made")
	require.NoError(t, err)
	assert.Equal(t, rotation.Metadata{Fingerprint: secret.Fingerprint("typed-by-hand")}, got.Meta)
	assert.False(t, got.Managed())

	_, err = s.Get(ctx, "no-token")
	assert.ErrorIs(t, err, rotation.ErrEmpty)
	_, err = s.Get(ctx, "Not_A_Name")
	assert.ErrorContains(t, err, "not valid")
}

// Keys, labels and annotations the sink does not own survive its writes.
func TestPutKeepsWhatItDoesNotOwn(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	admin := cp.AdminClient(t)
	ctx := t.Context()
	_, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "shared", Labels: map[string]string{"team": "checkout"},
			Annotations: map[string]string{"owner": "ops", Prefix + "stale": "from an old version"},
		},
		StringData: map[string]string{"db-password": "hunter2"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	s := newTestSink(t, cp.AdminConfig(), ns, Config{})
	_, err = s.Get(ctx, "shared")
	require.ErrorIs(t, err, rotation.ErrEmpty)
	require.NoError(t, s.Put(ctx, "shared", record("tok-1"), ""))

	got := getSecret(t, admin, ns, "shared")
	assert.Equal(t, []byte("hunter2"), got.Data["db-password"])
	assert.Equal(t, []byte("tok-1"), got.Data["token"])
	assert.Equal(t, "checkout", got.Labels["team"])
	assert.Equal(t, "ops", got.Annotations["owner"])
	assert.NotContains(t, got.Annotations, Prefix+"stale", "the sink owns its prefix")
}

func TestPutDetectsAConcurrentWriter(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	a := newTestSink(t, cp.AdminConfig(), ns, Config{})
	b := newTestSink(t, cp.AdminConfig(), ns, Config{})
	require.NoError(t, a.Put(ctx, "tok", record("tok-1"), ""))

	readA, err := a.Get(ctx, "tok")
	require.NoError(t, err)
	readB, err := b.Get(ctx, "tok")
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, "tok", record("tok-b"), readB.Version))

	err = a.Put(ctx, "tok", record("tok-a"), readA.Version)
	require.ErrorIs(t, err, rotation.ErrConflict)
	assert.NotContains(t, err.Error(), "tok-a")
	got, err := a.Get(ctx, "tok")
	require.NoError(t, err)
	assert.Equal(t, "tok-b", got.Secret.Reveal(), "the first writer's token stays")

	// An empty destination that got a token in between is a conflict too.
	_, err = a.Get(ctx, "fresh")
	require.ErrorIs(t, err, rotation.ErrEmpty)
	require.NoError(t, b.Put(ctx, "fresh", record("tok-b"), ""))
	require.ErrorIs(t, a.Put(ctx, "fresh", record("tok-a"), ""), rotation.ErrConflict)

	// So is a Secret deleted since it was read.
	readA, err = a.Get(ctx, "fresh")
	require.NoError(t, err)
	require.NoError(t, cp.AdminClient(t).CoreV1().Secrets(ns).Delete(ctx, "fresh", metav1.DeleteOptions{}))
	require.ErrorIs(t, a.Put(ctx, "fresh", record("tok-a"), readA.Version), rotation.ErrConflict)
}

// hookTransport runs before, once, just ahead of the first PUT of a Secret
// named name: a write by someone else between the sink's read and its
// update, which the API server answers with 409.
type hookTransport struct {
	rt     http.RoundTripper
	name   string
	once   sync.Once
	before func()
	fired  bool
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/secrets/"+h.name) {
		h.once.Do(func() { h.before(); h.fired = true })
	}
	return h.rt.RoundTrip(req)
}

// hooked returns a client configuration whose first update of Secret name
// is preceded by before.
func hooked(cfg *rest.Config, name string, before func()) (*rest.Config, *hookTransport) {
	h := &hookTransport{name: name, before: before}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { h.rt = rt; return h })
	return cfg, h
}

func TestPutRetriesAConflictOnKeysItDoesNotOwn(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	admin := cp.AdminClient(t)
	plain := newTestSink(t, cp.AdminConfig(), ns, Config{})
	require.NoError(t, plain.Put(ctx, "tok", record("tok-1"), ""))
	read, err := plain.Get(ctx, "tok")
	require.NoError(t, err)

	// Between the sink's read and its update, someone adds a key.
	cfg, hook := hooked(cp.AdminConfig(), "tok", func() {
		cur := getSecret(t, admin, ns, "tok")
		cur.Data["foreign"] = []byte("added meanwhile")
		_, err := admin.CoreV1().Secrets(ns).Update(ctx, cur, metav1.UpdateOptions{})
		require.NoError(t, err)
	})
	s := newTestSink(t, cfg, ns, Config{})
	require.NoError(t, s.Put(ctx, "tok", record("tok-2"), read.Version))
	require.True(t, hook.fired, "the concurrent write happened")

	got := getSecret(t, admin, ns, "tok")
	assert.Equal(t, []byte("tok-2"), got.Data["token"])
	assert.Equal(t, []byte("added meanwhile"), got.Data["foreign"], "kept, not overwritten")
}

func TestPutRefusesATokenChangedDuringItsUpdate(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	admin := cp.AdminClient(t)
	other := newTestSink(t, cp.AdminConfig(), ns, Config{})
	require.NoError(t, other.Put(ctx, "tok", record("tok-1"), ""))
	read, err := other.Get(ctx, "tok")
	require.NoError(t, err)

	// Between the sink's read and its update, another rotator writes.
	cfg, hook := hooked(cp.AdminConfig(), "tok", func() {
		require.NoError(t, other.Put(ctx, "tok", record("tok-other"), read.Version))
	})
	s := newTestSink(t, cfg, ns, Config{})
	err = s.Put(ctx, "tok", record("tok-2"), read.Version)
	require.True(t, hook.fired)
	require.ErrorIs(t, err, rotation.ErrConflict)
	assert.Equal(t, []byte("tok-other"), getSecret(t, admin, ns, "tok").Data["token"])
}

func TestPutRefusesImmutableAndTypedSecrets(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	admin := cp.AdminClient(t)
	immutable := true
	_, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "frozen"}, Immutable: &immutable, StringData: map[string]string{"token": "old"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "basic"}, Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "u"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	s := newTestSink(t, cp.AdminConfig(), ns, Config{})
	read, err := s.Get(ctx, "frozen")
	require.NoError(t, err)
	err = s.Put(ctx, "frozen", record("tok-1"), read.Version)
	require.Error(t, err)
	assert.NotErrorIs(t, err, rotation.ErrConflict)
	assert.ErrorContains(t, err, "immutable")
	assert.ErrorContains(t, err, "delete it")
	assert.Equal(t, []byte("old"), getSecret(t, admin, ns, "frozen").Data["token"])
	assert.ErrorContains(t, s.Check(ctx, "frozen"), "immutable")

	err = s.Put(ctx, "basic", record("tok-1"), "")
	assert.ErrorContains(t, err, "kubernetes.io/basic-auth")
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	admin := cp.AdminClient(t)
	_, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "allowed"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// A service account allowed to get and update one named Secret only,
	// as the shipped manifests grant.
	sa := cp.ServiceAccount(t, ns, "rotator", kubetest.Rules("", []string{"secrets"}, []string{"get", "update"}, "allowed"))
	s := newTestSink(t, sa.Config(), ns, Config{})

	require.NoError(t, s.Check(ctx, "allowed"))
	require.NoError(t, s.Put(ctx, "allowed", record("tok-1"), ""))
	got, err := s.Get(ctx, "allowed")
	require.NoError(t, err)
	assert.Equal(t, "tok-1", got.Secret.Reveal())

	_, err = s.Get(ctx, "other")
	require.Error(t, err)
	assert.ErrorContains(t, err, "forbidden")
	assert.ErrorContains(t, err, `resourceNames: ["other"]`)

	err = s.Put(ctx, "other", record("tok-1"), "")
	require.Error(t, err)
	assert.ErrorContains(t, err, `resourceNames: ["other"]`)

	err = s.Check(ctx, "other")
	require.Error(t, err)
	assert.ErrorContains(t, err, `"get" on secrets (resourceNames: ["other"])`)
	assert.ErrorContains(t, err, `"update" on secrets (resourceNames: ["other"])`)
}

func TestCreateNeedsCreatePermission(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	sa := cp.ServiceAccount(t, ns, "rotator", kubetest.Rules("", []string{"secrets"}, []string{"get", "update"}, "new"))
	s := newTestSink(t, sa.Config(), ns, Config{})

	err := s.Check(ctx, "new")
	require.Error(t, err)
	assert.ErrorContains(t, err, `"create" on secrets in namespace `+ns)

	err = s.Put(ctx, "new", record("tok-1"), "")
	require.Error(t, err)
	assert.ErrorContains(t, err, `verbs ["create"]`)

	cp.Grant(t, ns, sa.Username(), kubetest.Rules("", []string{"secrets"}, []string{"create"}))
	require.NoError(t, s.Check(ctx, "new"))
	require.NoError(t, s.Put(ctx, "new", record("tok-1"), ""))
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	s := newTestSink(t, cp.ConfigWithToken("expired-or-wrong"), ns, Config{})
	for name, err := range map[string]error{
		"get":   func() error { _, err := s.Get(t.Context(), "x"); return err }(),
		"put":   s.Put(t.Context(), "x", record("tok-1"), ""),
		"check": s.Check(t.Context(), "x"),
	} {
		require.Error(t, err, name)
		assert.ErrorContains(t, err, "401 Unauthorized", name)
		assert.ErrorContains(t, err, "invalid or expired", name)
	}
}

func TestRestartRollsWorkloads(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	admin := cp.AdminClient(t)
	labels := map[string]string{"app": "api"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"keep": "me"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	_, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	s := newTestSink(t, cp.AdminConfig(), ns, Config{Restart: []Restart{
		{Kind: KindDeployment, Name: "api", Secret: "tok"},
		{Kind: KindStatefulSet, Name: "worker", Namespace: ns, Secret: "tok"},
		{Kind: KindDeployment, Name: "unrelated", Secret: "other"},
	}})
	require.NoError(t, s.Put(ctx, "tok", record("tok-1"), ""))

	want := ns + "/tok@" + secret.Fingerprint("tok-1")
	d, err := admin.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, d.Spec.Template.Annotations[RestartAnnotation])
	assert.Equal(t, "me", d.Spec.Template.Annotations["keep"])
	assert.Equal(t, int64(2), d.Generation, "the pod template changed: a rollout")
	st, err := admin.AppsV1().StatefulSets(ns).Get(ctx, "worker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, st.Spec.Template.Annotations[RestartAnnotation])
}

func TestRestartFailureIsReportedAfterTheWrite(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()
	// Allowed to write the Secret, not to patch the Deployment, which does
	// not exist either.
	sa := cp.ServiceAccount(t, ns, "rotator",
		kubetest.Rules("", []string{"secrets"}, []string{"get", "update", "create"}))
	s := newTestSink(t, sa.Config(), ns, Config{Restart: []Restart{{Kind: KindDeployment, Name: "api", Secret: "tok"}}})

	err := s.Put(ctx, "tok", record("tok-1"), "")
	require.ErrorIs(t, err, rotation.ErrAfterWrite)
	assert.ErrorContains(t, err, `verbs ["patch"] on resource "deployments" in API group "apps" with resourceNames: ["api"]`)
	got, err := s.Get(ctx, "tok")
	require.NoError(t, err, "the write counts")
	assert.Equal(t, "tok-1", got.Secret.Reveal())

	err = s.Check(ctx, "tok")
	assert.ErrorContains(t, err, `"patch" on apps/deployments (resourceNames: ["api"])`)

	admin := newTestSink(t, cp.AdminConfig(), ns, Config{Restart: []Restart{{Kind: KindDeployment, Name: "api", Secret: "tok"}}})
	got, err = admin.Get(ctx, "tok")
	require.NoError(t, err)
	err = admin.Put(ctx, "tok", record("tok-2"), got.Version)
	require.ErrorIs(t, err, rotation.ErrAfterWrite)
	assert.ErrorContains(t, err, "not found")
}

// New connects through a kubeconfig and takes its context's namespace as
// the default; a destination "namespace/name" overrides it.
func TestNewWithKubeconfig(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns, other := cp.Namespace(t), cp.Namespace(t)
	path := cp.WriteKubeconfig(t, cp.AdminConfig(), ns)
	s, err := New(Config{ClientConfig: kube.ClientConfig{Kubeconfig: path}}, nil)
	require.NoError(t, err)
	assert.Equal(t, ns, s.Namespace())
	ctx := t.Context()
	require.NoError(t, s.Put(ctx, "tok", record("tok-1"), ""))
	require.NoError(t, s.Put(ctx, other+"/tok", record("tok-2"), ""))
	admin := cp.AdminClient(t)
	assert.Equal(t, []byte("tok-1"), getSecret(t, admin, ns, "tok").Data["token"])
	assert.Equal(t, []byte("tok-2"), getSecret(t, admin, other, "tok").Data["token"])

	s, err = New(Config{Namespace: other, ClientConfig: kube.ClientConfig{Kubeconfig: path}}, nil)
	require.NoError(t, err)
	assert.Equal(t, other, s.Namespace())

	_, err = New(Config{Key: "bad key"}, nil)
	assert.ErrorContains(t, err, "key")
}
