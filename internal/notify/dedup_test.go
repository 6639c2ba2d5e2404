package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// failing is a lineage whose rotation failed with err, long before its
// renewal time (becoming overdue is a change worth a message).
func failing(name, err string) rotation.Result {
	return rotation.Result{
		Lineage:  lineage("checkout", name),
		Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(30 * day)},
		Outcome:  rotation.OutcomeFailed, Err: errors.New(err),
	}
}

func pass(results ...rotation.Result) *rotation.Report {
	return &rotation.Report{Results: append([]rotation.Result{healthy()}, results...)}
}

// newHook returns a Webhook posting to a receiver, with cfg's other
// settings.
func newHook(t *testing.T, cfg Config, statuses ...int) (*Webhook, *receiver) {
	t.Helper()
	rc := &receiver{statuses: statuses}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	cfg.WebhookURL = secret.New(srv.URL + hookPath)
	w, err := New(cfg)
	require.NoError(t, err)
	w.retryDelay = 0
	return w, rc
}

// A webhook notified on every failing pass: an hourly daemon sent the
// same message 24 times a day. It now speaks when the problems change,
// reminds after the repeat interval, and says when they are resolved.
func TestNotifyOnChangeOnly(t *testing.T) {
	t.Parallel()
	w, rc := newHook(t, Config{RepeatInterval: field.Duration(24 * time.Hour)})
	steps := []struct {
		name     string
		rep      *rotation.Report
		at       time.Time
		sent     bool
		status   string
		resolved []string
	}{
		{"first failure", pass(failing("svc", "create: gave up after 1m3s")), now, true, StatusFiring, []string{}},
		{"same problem, other words", pass(failing("svc", "create: gave up after 1m17s")), now.Add(time.Hour), false, "", nil},
		{"a second problem", pass(failing("svc", "x"), failing("jobs", "y")), now.Add(2 * time.Hour), true, StatusFiring, []string{}},
		{"one resolved", pass(failing("jobs", "y")), now.Add(3 * time.Hour), true, StatusFiring,
			[]string{`target checkout: backend token "svc" (default/production): rotation failed`}},
		{"unchanged", pass(failing("jobs", "y")), now.Add(26 * time.Hour), false, "", nil},
		{"reminder after the repeat interval", pass(failing("jobs", "y")), now.Add(28 * time.Hour), true, StatusFiring, []string{}},
		{"all resolved", pass(), now.Add(29 * time.Hour), true, StatusResolved,
			[]string{`target checkout: backend token "jobs" (default/production): rotation failed`}},
		{"still fine", pass(), now.Add(30 * time.Hour), false, "", nil},
	}
	for _, st := range steps {
		before := rc.count()
		sent, err := w.Notify(t.Context(), st.rep, st.at)
		require.NoError(t, err, st.name)
		require.Equal(t, st.sent, sent, st.name)
		if !st.sent {
			assert.Equal(t, before, rc.count(), st.name)
			continue
		}
		require.Equal(t, before+1, rc.count(), st.name)
		p := decode(t, rc.bodies[before])
		assert.Equal(t, st.status, p.Details.Status, st.name)
		assert.Equal(t, st.resolved, p.Details.Resolved, st.name)
		if st.status == StatusResolved {
			assert.Contains(t, p.Text, ":white_check_mark: unleash-rotator: every problem is resolved\n✓ resolved: target checkout:", st.name)
		}
	}
}

// A CronJob's runs are separate processes: with a state file, the second
// run with the same problems stays quiet, and a later one says they are
// resolved.
func TestNotifyStateSurvivesTheProcess(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "notify-state.json")
	run := func(rep *rotation.Report, at time.Time) (bool, *receiver) {
		w, rc := newHook(t, Config{StateFile: state})
		sent, err := w.Notify(t.Context(), rep, at)
		require.NoError(t, err)
		return sent, rc
	}
	sent, _ := run(pass(failing("svc", "boom")), now)
	assert.True(t, sent)
	fi, err := os.Stat(state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	sent, _ = run(pass(failing("svc", "boom again")), now.Add(time.Hour))
	assert.False(t, sent, "the next run knows it was said")

	sent, rc := run(pass(), now.Add(2*time.Hour))
	assert.True(t, sent)
	assert.Equal(t, StatusResolved, decode(t, rc.bodies[0]).Details.Status)
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.JSONEq(t, `{"problems":null}`, string(b), "nothing left to resolve")
}

// A message that could not be delivered is due again at the next pass.
func TestNotifyFailedDeliveryIsDueAgain(t *testing.T) {
	t.Parallel()
	w, rc := newHook(t, Config{}, http.StatusBadGateway, http.StatusBadGateway)
	rep := pass(failing("svc", "boom"))
	sent, err := w.Notify(t.Context(), rep, now)
	require.Error(t, err)
	assert.False(t, sent)
	sent, err = w.Notify(t.Context(), rep, now.Add(time.Hour))
	require.NoError(t, err)
	assert.True(t, sent)
	assert.Equal(t, 3, rc.count())
}

// A state that cannot be read or written never silences a notification.
func TestNotifyStateProblemsDoNotSilence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	require.NoError(t, os.WriteFile(corrupt, []byte("{not json"), 0o600))
	w, rc := newHook(t, Config{StateFile: corrupt})
	sent, err := w.Notify(t.Context(), pass(failing("svc", "boom")), now)
	assert.True(t, sent)
	require.ErrorContains(t, err, "is not what the rotator writes (remove it)")
	assert.Equal(t, 1, rc.count())

	w, _ = newHook(t, Config{StateFile: filepath.Join(dir, "missing", "state.json")})
	sent, err = w.Notify(t.Context(), pass(failing("svc", "boom")), now)
	assert.True(t, sent)
	require.ErrorContains(t, err, "save notification state")
}

func TestConfig(t *testing.T) {
	t.Parallel()
	var c Config
	assert.False(t, c.Enabled())
	c.SetDefaults()
	assert.Equal(t, field.Duration(DefaultTimeout), c.Timeout)
	assert.Equal(t, field.Duration(DefaultRepeatInterval), c.RepeatInterval)
	require.NoError(t, c.Validate())

	err := Config{Timeout: field.Duration(-time.Second), RepeatInterval: field.Duration(-time.Hour), WebhookURL: secret.New("ftp://hooks.example" + hookPath)}.Validate()
	var paths []string
	for _, e := range field.All(err) {
		var fe *field.Error
		require.ErrorAs(t, e, &fe)
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"timeout", "repeat_interval", "webhook_url"}, paths)
	assertNoURL(t, err)
}

func TestNewReadsTheURLFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "webhook")
	require.NoError(t, os.WriteFile(file, []byte("https://hooks.example"+hookPath+"\n"), 0o600))
	c := Config{WebhookURLFile: file}
	assert.True(t, c.Enabled())
	w, err := New(c)
	require.NoError(t, err)
	assert.Equal(t, "https://hooks.example", w.where)

	_, err = New(Config{WebhookURLFile: filepath.Join(dir, "missing")})
	require.ErrorContains(t, err, "notify.webhook_url_file: cannot read secret file")

	require.NoError(t, os.WriteFile(file, []byte("ftp://hooks.example"+hookPath), 0o600))
	_, err = New(Config{WebhookURLFile: file})
	require.ErrorContains(t, err, "must be an http:// or https:// URL")
	assertNoURL(t, err)

	env := Config{WebhookURL: secret.New("https://env.example" + hookPath), WebhookURLFile: file}
	w, err = New(env)
	require.NoError(t, err, "the URL from the environment wins; the file is not read")
	assert.Equal(t, "https://env.example", w.where)
}
