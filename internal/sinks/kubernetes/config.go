package kubernetes

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

// DefaultKey is the default data key of the token.
const DefaultKey = "token"

// Workload kinds a [Restart] can roll.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
)

// Config configures a [Sink]: the `kubernetes:` part of a sink in the
// configuration file.
type Config struct {
	// Namespace is where Secrets whose destination path is a bare name
	// live. Empty: the rotator's own namespace (in a pod), else the
	// kubeconfig context's. A destination "namespace/name" overrides it.
	Namespace string `yaml:"namespace"`
	// Key is the data key that holds the token. Defaults to [DefaultKey].
	Key string `yaml:"key"`
	// Fields are more data keys written with the token. Each value is a Go
	// template over [sinks.FieldData], such as "{{.ExpiresAt}}", or plain
	// text.
	Fields map[string]string `yaml:"fields"`
	// Restart lists workloads to roll after their Secret changes. Empty
	// (the default): none.
	Restart []Restart `yaml:"restart"`
	// ClientConfig says how to reach the API server.
	kube.ClientConfig `yaml:",inline"`
}

// Restart is a workload that reads one of the sink's Secrets and does not
// notice when it changes: after the sink writes that Secret, it patches the
// workload's pod template annotation [RestartAnnotation], and the
// workload's controller rolls its pods (as `kubectl rollout restart` and
// Reloader do).
type Restart struct {
	// Kind is [KindDeployment] or [KindStatefulSet].
	Kind string `yaml:"kind"`
	// Name is the workload's name.
	Name string `yaml:"name"`
	// Namespace is the workload's namespace. Empty: its Secret's.
	Namespace string `yaml:"namespace"`
	// Secret is the destination whose change rolls the workload, as in a
	// target's path: "name" (in Namespace, or the sink's namespace) or
	// "namespace/name". A pod can read Secrets of its own namespace only,
	// so the two namespaces must agree.
	Secret string `yaml:"secret"`
}

// SetDefaults fills the zero-valued settings with their defaults.
func (c *Config) SetDefaults() {
	if c.Key == "" {
		c.Key = DefaultKey
	}
	c.ClientConfig.SetDefaults()
}

// Validate checks the settings, without I/O, and returns every problem, each
// a *field.Error.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace != "" {
		errs = append(errs, checkNamespace("namespace", c.Namespace))
	}
	if c.Key == "" {
		errs = append(errs, field.Errorf("key", "is empty: the data key that holds the token"))
	} else {
		errs = append(errs, checkKey("key", c.Key))
	}
	for k := range c.Fields {
		p := field.Path("fields", k)
		if k == c.Key {
			errs = append(errs, field.Errorf(p, "is the key that holds the token (key: %s): choose another", c.Key))
			continue
		}
		errs = append(errs, checkKey(p, k))
	}
	if _, err := sinks.ParseFields(c.Fields); err != nil {
		errs = append(errs, err)
	}
	for i, r := range c.Restart {
		errs = append(errs, field.Within(field.Index("restart", i), r.validate()))
	}
	errs = append(errs, c.ClientConfig.Validate())
	return field.Join(errs...)
}

func (r Restart) validate() error {
	var errs []error
	switch r.Kind {
	case KindDeployment, KindStatefulSet:
	case "":
		errs = append(errs, field.Errorf("kind", "is empty: %s or %s", KindDeployment, KindStatefulSet))
	default:
		hint := ""
		for _, k := range []string{KindDeployment, KindStatefulSet} {
			if strings.EqualFold(r.Kind, k) {
				hint = fmt.Sprintf(" (did you mean %s?)", k)
			}
		}
		errs = append(errs, field.Errorf("kind", "%q is not a kind the sink can restart: use %s or %s%s", r.Kind, KindDeployment, KindStatefulSet, hint))
	}
	if r.Name == "" {
		errs = append(errs, field.Errorf("name", "is empty: the workload's name"))
	} else if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		errs = append(errs, field.Errorf("name", "%q is not a valid workload name: %s", r.Name, strings.Join(msgs, "; ")))
	}
	if r.Namespace != "" {
		errs = append(errs, checkNamespace("namespace", r.Namespace))
	}
	if r.Secret == "" {
		errs = append(errs, field.Errorf("secret", "is empty: the destination path (Secret name) whose change restarts the workload"))
	} else if ns, _, err := splitDest(r.Secret); err != nil {
		errs = append(errs, field.Errorf("secret", "%v", err))
	} else if ns != "" && r.Namespace != "" && ns != r.Namespace {
		errs = append(errs, field.Errorf("secret", "%q is in namespace %s, but the workload is in %s: a pod can only read Secrets of its own namespace", r.Secret, ns, r.Namespace))
	}
	return errors.Join(errs...)
}

// ValidateDest checks a destination path: "name" or "namespace/name", with
// a valid Secret name and namespace. The configuration loader calls it for
// paths that are not templates; Get and Put check every path again.
func ValidateDest(dest string) error {
	_, _, err := splitDest(dest)
	return err
}

// splitDest splits a destination path into its namespace ("" when it is a
// bare name) and name, and checks both.
func splitDest(dest string) (ns, name string, err error) {
	parts := strings.Split(dest, "/")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		ns, name = parts[0], parts[1]
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return "", "", fmt.Errorf("destination %q: namespace %q is not valid: %s", dest, ns, strings.Join(msgs, "; "))
		}
	default:
		return "", "", fmt.Errorf("destination %q: use a Secret name or namespace/name", dest)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", "", fmt.Errorf("destination %q: Secret name %q is not valid: %s", dest, name, strings.Join(msgs, "; "))
	}
	return ns, name, nil
}

func checkNamespace(path, ns string) error {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return field.Errorf(path, "%q is not a valid namespace: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

func checkKey(path, key string) error {
	if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
		return field.Errorf(path, "%q is not a valid Secret data key: %s", key, strings.Join(msgs, "; "))
	}
	return nil
}
