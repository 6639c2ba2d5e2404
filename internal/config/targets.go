package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// buildTargets checks the targets and builds them, each with its policy
// merged and validated against the schedule's interval.
func buildTargets(r rawConfig, root *yaml.Node, cfg *Config, c *checker) []rotation.Target {
	sinkNames := make([]string, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		sinkNames = append(sinkNames, s.Name)
	}
	defaults := r.Defaults
	keepRenewAlternative(mappingValue(root, "defaults"), &defaults)

	first := map[string]int{}
	pats := map[[2]string]string{} // (owner, description) → where first declared
	targets := make([]rotation.Target, 0, len(r.Targets))
	for i, rt := range r.Targets {
		path := indexPath("targets", i)
		switch j, dup := first[rt.Name]; {
		case strings.TrimSpace(rt.Name) == "":
			c.at(joinPath(path, "name"), "is required")
		case dup:
			c.at(joinPath(path, "name"), "target %q is already defined at targets[%d]", rt.Name, j)
		default:
			first[rt.Name] = i
		}
		t := rotation.Target{Name: rt.Name, Kind: rotation.Kind(rt.Kind), Overwrite: rt.Overwrite}
		t.Dests = buildDests(rt.Sinks, joinPath(path, "sinks"), sinkNames, c)
		switch t.Kind {
		case rotation.KindAPIToken:
			if rt.Select == nil && len(rt.Tokens) == 0 {
				c.at(path, "an api-token target needs select (to find tokens) or tokens (to declare them), or both")
			}
			if rt.Select != nil {
				t.Select = buildSelector(*rt.Select, joinPath(path, "select"), c)
			}
			for k, tok := range rt.Tokens {
				t.Specs = append(t.Specs, buildAPITokenSpec(tok, indexPath(joinPath(path, "tokens"), k), c))
			}
		case rotation.KindPAT:
			if len(rt.PATs) == 0 {
				c.at(joinPath(path, "pats"), "a pat target needs at least one entry in pats")
			}
			for k, p := range rt.PATs {
				pp := indexPath(joinPath(path, "pats"), k)
				spec, ok := buildPATSpec(p, pp, c)
				key := [2]string{p.Owner, p.Description}
				if prev, dup := pats[key]; ok && dup {
					c.at(pp, "PAT %q of %s is already declared at %s", p.Description, p.Owner, prev)
				} else if ok {
					pats[key] = pp
				}
				t.Specs = append(t.Specs, spec)
			}
		case rotation.KindEdge:
			if len(rt.Edge) == 0 {
				c.at(joinPath(path, "edge"), "an edge target needs at least one entry in edge")
			}
			if e := cfg.Unleash.Edge; e == nil || e.ClientSecret.IsZero() {
				c.at(joinPath(path, "kind"), "edge targets need the Edge client secret: configure unleash.edge "+
					"and set unleash.edge.client_secret_file or ROTATOR_UNLEASH_EDGE_CLIENT_SECRET(_FILE)")
			}
			for k, es := range rt.Edge {
				ep := indexPath(joinPath(path, "edge"), k)
				c.checkEnvironment(joinPath(ep, "environment"), es.Environment)
				c.checkProjects(joinPath(ep, "projects"), es.Projects)
				t.Specs = append(t.Specs, rotation.Spec{
					Kind: rotation.KindEdge, Name: "edge", Type: "backend",
					Projects: sorted(es.Projects), Environment: es.Environment,
				})
			}
		default:
			c.oneOf(joinPath(path, "kind"), rt.Kind, string(rotation.KindAPIToken), string(rotation.KindPAT), string(rotation.KindEdge))
			targets = append(targets, t)
			continue
		}
		t.Policy = targetPolicy(rt, defaults, path, cfg, c)
		targets = append(targets, t)
	}
	return targets
}

// targetPolicy merges the target's policy keys over the defaults and
// validates the result for the target's kind. Its problems are the target's
// when it sets a policy, else the defaults'.
func targetPolicy(rt rawTarget, defaults rawPolicy, path string, cfg *Config, c *checker) rotation.Policy {
	merged := defaults
	where := "defaults"
	if n := resolveAlias(rt.Policy); n != nil && !isNull(n) {
		where = joinPath(path, "policy")
		w := walker{c: c}
		w.decode(n, reflect.ValueOf(&merged).Elem(), where, false)
		keepRenewAlternative(n, &merged)
	}
	p := merged.policy()
	// Jitter delays a pass by up to its length, so the gap between two
	// passes can reach the interval plus the jitter.
	if err := p.Validate(rotation.Kind(rt.Kind), cfg.Interval+cfg.Jitter); err != nil {
		for _, e := range unjoin(err) {
			c.at(where, "%v", e)
		}
	}
	return p
}

// keepRenewAlternative makes renew_before and renew_before_percent
// alternatives across levels: a level (defaults, a target) that sets one of
// them alone replaces whichever the level below set. Setting both at one
// level is left for validation to refuse.
func keepRenewAlternative(n *yaml.Node, p *rawPolicy) {
	before, percent := mappingValue(n, "renew_before") != nil, mappingValue(n, "renew_before_percent") != nil
	switch {
	case before && !percent:
		p.RenewBeforePercent = 0
	case percent && !before:
		p.RenewBefore = 0
	}
}

// mappingValue returns the value of key in mapping n, aliases resolved, or
// nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

// unjoin returns the errors an errors.Join holds, or err alone.
func unjoin(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}

// buildDests checks a target's destinations: at least one, each naming a
// configured sink with a path template that parses.
func buildDests(raws []rawDest, path string, sinkNames []string, c *checker) []rotation.Destination {
	if len(raws) == 0 {
		c.at(path, "a target needs at least one sink to publish to")
	}
	dests := make([]rotation.Destination, 0, len(raws))
	for i, d := range raws {
		p := indexPath(path, i)
		switch {
		case d.Sink == "":
			c.at(joinPath(p, "sink"), "is required: the name of a sink")
		case !slices.Contains(sinkNames, d.Sink):
			c.at(joinPath(p, "sink"), "no sink is named %q%s", d.Sink, suggest(d.Sink, sinkNames, "%q"))
		}
		tmpl, err := rotation.ParsePathTemplate(d.Path)
		if err != nil {
			c.at(joinPath(p, "path"), "%v", err)
		}
		dests = append(dests, rotation.Destination{Sink: d.Sink, Path: tmpl})
	}
	return dests
}

// buildSelector checks a target's select section. Types are normalised:
// "client" is what older Unleash versions call backend tokens.
func buildSelector(r rawSelect, path string, c *checker) *rotation.Selector {
	s := &rotation.Selector{Projects: r.Projects, Environments: r.Environments}
	c.nonEmptyItems(joinPath(path, "projects"), r.Projects)
	c.nonEmptyItems(joinPath(path, "environments"), r.Environments)
	for i, typ := range r.Types {
		if c.oneOf(indexPath(joinPath(path, "types"), i), typ, "backend", "frontend", "client") {
			if n := normaliseType(typ); !slices.Contains(s.Types, n) {
				s.Types = append(s.Types, n)
			}
		}
	}
	if r.Name != "" {
		re, err := regexp.Compile(r.Name)
		if err != nil {
			c.at(joinPath(path, "name"), "invalid regular expression: %v", err)
		}
		s.Name = re
	}
	return s
}

func normaliseType(t string) string {
	if t == "client" {
		return "backend"
	}
	return t
}

func buildAPITokenSpec(r rawAPIToken, path string, c *checker) rotation.Spec {
	if strings.TrimSpace(r.Name) == "" {
		c.at(joinPath(path, "name"), "is required: the token's name in Unleash")
	}
	if r.Type == "" {
		c.at(joinPath(path, "type"), "is required: backend, frontend or client")
	} else {
		c.oneOf(joinPath(path, "type"), r.Type, "backend", "frontend", "client")
	}
	c.checkProjects(joinPath(path, "projects"), r.Projects)
	c.checkEnvironment(joinPath(path, "environment"), r.Environment)
	return rotation.Spec{
		Kind: rotation.KindAPIToken, Name: r.Name, Type: normaliseType(r.Type),
		Projects: sorted(r.Projects), Environment: r.Environment,
	}
}

// buildPATSpec checks a declared PAT; ok is false when it is invalid.
func buildPATSpec(r rawPAT, path string, c *checker) (spec rotation.Spec, ok bool) {
	ok = true
	if err := checkOwner(r.Owner); err != nil {
		c.at(joinPath(path, "owner"), "%v", err)
		ok = false
	}
	if strings.TrimSpace(r.Description) == "" {
		c.at(joinPath(path, "description"), "is required: the PAT's description, which names it in Unleash")
		ok = false
	}
	return rotation.Spec{Kind: rotation.KindPAT, Name: r.Description, Type: "pat", Owner: r.Owner}, ok
}

// checkOwner checks a PAT owner: "user" (the account the rotator
// authenticates as) or "service-account:<id>".
func checkOwner(owner string) error {
	if owner == "user" {
		return nil
	}
	id, ok := strings.CutPrefix(owner, "service-account:")
	if n, err := strconv.Atoi(id); ok && err == nil && n > 0 && strconv.Itoa(n) == id {
		return nil
	}
	return fmt.Errorf(`must be "user" or "service-account:<id>" with a positive id, got %q`, owner)
}

// sorted returns a sorted copy of s.
func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
