package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
)

// Job is the Pushgateway job the rotator pushes to.
const Job = "unleash_rotator"

// pushTimeout backs up the caller's context: a Pushgateway that accepts the
// connection and never answers must not hold a one-shot run forever.
const pushTimeout = 30 * time.Second

// Push pushes everything g gathers to the Pushgateway at url (scheme, host
// and any path prefix; "host:port" means http), as job (empty: [Job]). It
// uses PUT, which replaces every metric of the job's group: a run's push
// leaves no series of an earlier run behind. Credentials may be given in url
// as user:password; errors do not show the password.
func Push(ctx context.Context, url, job string, g prometheus.Gatherer) error {
	if job == "" {
		job = Job
	}
	err := push.New(url, job).
		Gatherer(g).
		Client(&http.Client{Timeout: pushTimeout}).
		PushContext(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("push metrics: %w", ctx.Err())
	}
	if msg, scrubbed := scrubPassword(err.Error(), url); scrubbed {
		return fmt.Errorf("push metrics: %s", msg)
	}
	return fmt.Errorf("push metrics: %w", err)
}

// scrubPassword removes the password of rawURL from msg. push's errors
// include the URL as given.
func scrubPassword(msg, rawURL string) (string, bool) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return msg, false
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(msg, pw) {
		return msg, false
	}
	return strings.ReplaceAll(msg, pw, "xxxxx"), true
}

// WriteTextfile writes everything g gathers to path in the text exposition
// format, for node-exporter's textfile collector (path should end in
// ".prom"). The write is atomic: a temporary file in the same directory,
// named so that the collector ignores it, is renamed over path, so the
// collector never reads half a file. The file is world-readable (0644):
// node-exporter usually runs as another user.
func WriteTextfile(path string, g prometheus.Gatherer) (err error) {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write metrics textfile: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	enc := expfmt.NewEncoder(tmp, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write metrics textfile %s: %w", path, err)
		}
	}
	// World-readable: node-exporter usually runs as another user, and
	// metrics hold no secret.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write metrics textfile: %w", err)
	}
	return nil
}
