package metrics

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

// DefaultListen is where `rotator run` serves metrics when the
// configuration does not say.
const DefaultListen = ":9464"

// Config is the metrics part of the configuration (the `metrics:` key).
type Config struct {
	// Listen is the host:port `rotator run` serves /metrics, /healthz and
	// /readyz on; "" turns the server off. SetDefaults cannot tell "" from
	// unset, so the configuration loader fills in [DefaultListen] before it
	// decodes the file: a file that says `listen: ""` keeps it off.
	Listen string `yaml:"listen"`
	// Pushgateway is the Pushgateway a one-shot run (`rotator once`) pushes
	// to: http(s)://host:port[/prefix], or host:port for http. A password
	// in it (user:password@) never appears in logs or errors.
	Pushgateway string `yaml:"pushgateway"`
	// Textfile is the file a one-shot run writes for node-exporter's
	// textfile collector; its name must end in ".prom".
	Textfile string `yaml:"textfile"`
	// Grouping is the Pushgateway grouping key besides job="unleash_rotator".
	// Without an "instance" label, instance is the Unleash server's host, so
	// rotators of different instances never overwrite each other's group;
	// rotators of one instance (different targets) need one each.
	Grouping map[string]string `yaml:"grouping"`
}

// SetDefaults fills the zero fields with their defaults. There are none
// that a zero value can stand for: see Listen and Grouping.
func (c *Config) SetDefaults() {}

// labelName is what Prometheus allows as a label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate reports every problem with c, without I/O.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if msg := checkHostPort(c.Listen); msg != "" {
			errs = append(errs, field.Errorf("listen", "%s", msg))
		}
	}
	if c.Pushgateway != "" {
		if msg := checkPushgateway(c.Pushgateway); msg != "" {
			errs = append(errs, field.Errorf("pushgateway", "%s", msg))
		}
	}
	if c.Textfile != "" && !strings.HasSuffix(c.Textfile, ".prom") {
		errs = append(errs, field.Errorf("textfile", "must end in .prom: node-exporter's textfile collector reads only *.prom files"))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Grouping)) {
		p := field.Path("grouping", k)
		switch {
		case !labelName.MatchString(k) || strings.HasPrefix(k, "__"):
			errs = append(errs, field.Errorf(p, "is not a Prometheus label name"))
		case k == "job":
			errs = append(errs, field.Errorf(p, "job is always %q: use another label", Job))
		case c.Grouping[k] == "":
			errs = append(errs, field.Errorf(p, "must not be empty"))
		}
	}
	return field.Join(errs...)
}

// checkHostPort checks a listen address such as ":9464" or
// "127.0.0.1:9464".
func checkHostPort(v string) string {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "must be host:port, such as :9464, got " + strconv.Quote(v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "port must be a number from 0 to 65535, got " + strconv.Quote(port)
	}
	return ""
}

// pushgatewayURL returns the Pushgateway address with a scheme: the push
// client reads host:port as http.
func pushgatewayURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return "http://" + raw
	}
	return raw
}

// checkPushgateway checks a Pushgateway address without quoting a
// password it may hold.
func checkPushgateway(raw string) string {
	u, err := field.HTTPURL(pushgatewayURL(raw))
	switch {
	case err != nil:
		return err.Error() + ", or host:port"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}
