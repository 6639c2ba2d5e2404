package metrics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Job is the Pushgateway job the rotator pushes to.
const Job = "unleash_rotator"

// pushTimeout backs up the caller's context: a Pushgateway that accepts the
// connection and never answers must not hold a one-shot run forever.
const pushTimeout = 30 * time.Second

// Exporter hands the metrics of a one-shot run to a Pushgateway and/or
// node-exporter's textfile collector, as [Config] says. Create it with
// [NewExporter].
//
// Both see only the rotator's own metrics (unleash_rotator_*): the Go
// runtime and process metrics of a process that lived for one pass mean
// nothing, and node-exporter exports its own.
//
// A run's metrics replace the last run's, except after a failed run: then
// each metric the run did not produce keeps its last value. A failed run
// has no last_success_timestamp_seconds, and one that could not list the
// tokens has no expiry or renewal times; a Pushgateway, or the textfile,
// keeps those of the last run that had them, so alerts on them see the
// last known values instead of series that vanish during an outage.
type Exporter struct {
	pushgateway string // with a scheme
	grouping    map[string]string
	textfile    string
	g           prometheus.Gatherer
	client      *http.Client
}

// NewExporter returns the exporter cfg describes, for the metrics g
// gathers. instance is the "instance" grouping label when cfg.Grouping has
// none: the wiring passes the Unleash server's host.
func NewExporter(cfg Config, g prometheus.Gatherer, instance string) (*Exporter, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	grouping := maps.Clone(cfg.Grouping)
	if grouping == nil {
		grouping = map[string]string{}
	}
	if _, ok := grouping["instance"]; !ok {
		if instance == "" {
			return nil, field.Errorf("grouping", `has no "instance" label and no default was given`)
		}
		grouping["instance"] = instance
	}
	e := &Exporter{grouping: grouping, textfile: cfg.Textfile, g: rotatorOnly(g), client: &http.Client{Timeout: pushTimeout}}
	if cfg.Pushgateway != "" {
		e.pushgateway = pushgatewayURL(cfg.Pushgateway)
	}
	return e, nil
}

// Enabled reports whether the exporter has anywhere to export to.
func (e *Exporter) Enabled() bool { return e.pushgateway != "" || e.textfile != "" }

// Pushgateway returns the Pushgateway address, its password (if any)
// redacted, for logs; "" if there is none.
func (e *Exporter) Pushgateway() string { return secret.Scrub(e.pushgateway) }

// Export pushes and/or writes the metrics. succeeded says whether the run
// succeeded (nothing failed): only then do its metrics replace all of the
// last run's.
func (e *Exporter) Export(ctx context.Context, succeeded bool) error {
	var errs []error
	if e.pushgateway != "" {
		errs = append(errs, e.push(ctx, succeeded))
	}
	if e.textfile != "" {
		errs = append(errs, e.write(succeeded))
	}
	return errors.Join(errs...)
}

// push sends the metrics to the Pushgateway: PUT after a successful run,
// which replaces the whole group; POST after a failed one, which replaces
// only the metrics (by name) that the run pushes.
func (e *Exporter) push(ctx context.Context, succeeded bool) error {
	p := push.New(e.pushgateway, Job).Gatherer(e.g).Client(e.client)
	for _, k := range slices.Sorted(maps.Keys(e.grouping)) {
		p = p.Grouping(k, e.grouping[k])
	}
	send := p.AddContext
	if succeeded {
		send = p.PushContext
	}
	err := send(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("push metrics: %w", ctx.Err())
	}
	// push's errors quote the URL, password included.
	return fmt.Errorf("push metrics: %w", secret.ScrubError(err))
}

// write writes the textfile with prometheus.WriteToTextfile: a temp file in
// the same directory whose name does not end in .prom (so the collector
// never reads it half-written), made world-readable (node-exporter usually
// runs as another user; metrics hold no secret) and renamed over the file.
// After a failed run, the metrics it lacks are taken from the file it
// replaces.
func (e *Exporter) write(succeeded bool) error {
	g := e.g
	if !succeeded {
		g = withPrevious(e.g, e.textfile)
	}
	if err := prometheus.WriteToTextfile(e.textfile, g); err != nil {
		return fmt.Errorf("write metrics textfile %s: %w", e.textfile, err)
	}
	return nil
}

// rotatorOnly gathers the unleash_rotator_* metrics of g.
func rotatorOnly(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
			return !strings.HasPrefix(mf.GetName(), namespace+"_")
		}), err
	})
}

// withPrevious gathers g, plus the rotator's metrics of the textfile at
// path that g does not have. An unreadable or malformed previous file
// adds nothing.
func withPrevious(g prometheus.Gatherer, path string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		if err != nil {
			return nil, err
		}
		f, ferr := os.Open(path)
		if ferr != nil {
			return mfs, nil
		}
		defer func() { _ = f.Close() }()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		prev, perr := parser.TextToMetricFamilies(f)
		if perr != nil {
			return mfs, nil
		}
		have := map[string]bool{}
		for _, mf := range mfs {
			have[mf.GetName()] = true
		}
		for _, name := range slices.Sorted(maps.Keys(prev)) {
			if !have[name] && strings.HasPrefix(name, namespace+"_") {
				mfs = append(mfs, prev[name])
			}
		}
		slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		return mfs, nil
	})
}
