package kubernetes

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.SetDefaults()
	assert.Equal(t, DefaultKey, c.Key)
	assert.Empty(t, c.Namespace, "resolved from the connection")
	require.NoError(t, c.Validate())
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config { c := Config{}; c.SetDefaults(); return c }
	tests := []struct {
		name   string
		modify func(*Config)
		paths  []string // the paths of the problems, in order
	}{
		{"valid with everything", func(c *Config) {
			c.Namespace = "apps"
			c.Fields = map[string]string{"url": "https://u.example.com", "expires": "{{.ExpiresAt}}"}
			c.Restart = []Restart{
				{Kind: KindDeployment, Name: "api", Secret: "tok"},
				{Kind: KindStatefulSet, Name: "db", Namespace: "apps", Secret: "apps/tok"},
			}
			c.Kubeconfig = "/etc/kubeconfig"
		}, nil},
		{"bad namespace", func(c *Config) { c.Namespace = "Apps" }, []string{"namespace"}},
		{"bad key", func(c *Config) { c.Key = "a/b" }, []string{"key"}},
		{"field is the key", func(c *Config) { c.Fields = map[string]string{"token": "x"} }, []string{"fields.token"}},
		{"field key invalid", func(c *Config) { c.Fields = map[string]string{"a b": "x"} }, []string{"fields.a b"}},
		{"field template unknown name", func(c *Config) { c.Fields = map[string]string{"x": "{{.Nope}}"} }, []string{"fields.x"}},
		{"field template syntax", func(c *Config) { c.Fields = map[string]string{"x": "{{"} }, []string{"fields.x"}},
		{"restart kind", func(c *Config) { c.Restart = []Restart{{Kind: "deployment", Name: "a", Secret: "s"}} }, []string{"restart[0].kind"}},
		{"restart empty", func(c *Config) { c.Restart = []Restart{{}} }, []string{"restart[0].kind", "restart[0].name", "restart[0].secret"}},
		{"restart bad secret", func(c *Config) { c.Restart = []Restart{{Kind: KindDeployment, Name: "a", Secret: "a/b/c"}} }, []string{"restart[0].secret"}},
		{"restart namespaces disagree", func(c *Config) {
			c.Restart = []Restart{{Kind: KindDeployment, Name: "a", Namespace: "x", Secret: "y/s"}}
		}, []string{"restart[0].secret"}},
		{"kubeconfig spaces", func(c *Config) { c.Kubeconfig = " /k" }, []string{"kubeconfig"}},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			var paths []string
			for _, e := range field.All(err) {
				var fe *field.Error
				require.True(t, errors.As(e, &fe), "not a *field.Error: %v", e)
				paths = append(paths, fe.Path)
			}
			assert.Equal(t, tt.paths, paths, "problems: %v", err)
		})
	}
}

func TestValidateDest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dest, ns, name string
		ok             bool
	}{
		{"unleash-checkout", "", "unleash-checkout", true},
		{"apps/unleash-checkout", "apps", "unleash-checkout", true},
		{"tokens.v1", "", "tokens.v1", true},
		{"", "", "", false},
		{"Upper", "", "", false},
		{"a/b/c", "", "", false},
		{"ns.with.dots/x", "", "", false},
		{"/x", "", "", false},
		{"x/", "", "", false},
	}
	for _, tt := range tests {
		ns, name, err := splitDest(tt.dest)
		if !tt.ok {
			assert.Error(t, err, tt.dest)
			assert.Error(t, ValidateDest(tt.dest), tt.dest)
			continue
		}
		require.NoError(t, err, tt.dest)
		assert.Equal(t, [2]string{tt.ns, tt.name}, [2]string{ns, name}, tt.dest)
	}
}

func TestResolveRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    Restart
		want restartTarget
	}{
		{Restart{Kind: KindDeployment, Name: "a", Secret: "s"}, restartTarget{KindDeployment, "sink-ns", "a", ref{"sink-ns", "s"}}},
		{Restart{Kind: KindDeployment, Name: "a", Namespace: "apps", Secret: "s"}, restartTarget{KindDeployment, "apps", "a", ref{"apps", "s"}}},
		{Restart{Kind: KindStatefulSet, Name: "a", Secret: "other/s"}, restartTarget{KindStatefulSet, "other", "a", ref{"other", "s"}}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, resolveRestart(tt.r, "sink-ns"))
	}
}
