package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// check checks the whole configuration, records every problem in p, and
// derives Location, Interval and Targets.
func (c *Config) check(p *problems) {
	p.fields("unleash", c.Unleash.Validate())
	c.checkSchedule(p)
	if c.Lock.Dir == "" {
		c.Lock.Dir = DefaultLockDir()
	}
	p.fields("lock", field.OneOf("type", c.Lock.Type, "file", "kubernetes"))
	if c.Lock.Type == "kubernetes" {
		p.fields("lock.kubernetes", c.Lock.Kubernetes.Validate())
	}
	c.checkSinks(p)
	c.Targets = c.buildTargets(p)
	p.fields("metrics", c.Metrics.Validate())
	p.fields("notify", c.Notify.Validate())
	p.fields("log", field.Join(
		field.OneOf("level", c.Log.Level, "debug", "info", "warn", "error"),
		field.OneOf("format", c.Log.Format, "auto", "text", "json")))
}

// checkSchedule checks the schedule and what depends on its interval.
func (c *Config) checkSchedule(p *problems) {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		p.atf("timezone", "unknown time zone %q (want an IANA name such as UTC or Europe/Paris)", c.Timezone)
		loc = time.UTC
	}
	c.Location = loc
	sched, err := cron.ParseStandard(c.Schedule)
	switch {
	case err != nil:
		p.atf("schedule", "invalid schedule %q: %v (want 5 cron fields, or a descriptor such as @hourly or @every 1h)", c.Schedule, err)
	default:
		c.Interval = scheduleInterval(sched, loc)
		if c.Interval == 0 {
			p.atf("schedule", "schedule %q never runs", c.Schedule)
		}
	}
	switch jitter := time.Duration(c.Jitter); {
	case jitter < 0:
		p.atf("jitter", "must not be negative, got %s", c.Jitter)
	case c.Interval > 0 && jitter >= c.Interval:
		p.atf("jitter", "must be shorter than the schedule's interval (%s), got %s", c.Interval, c.Jitter)
	}
	p.fields("", field.Positive("pass_timeout", c.PassTimeout))
	if c.Concurrency < 1 {
		p.atf("concurrency", "must be at least 1, got %d", c.Concurrency)
	}
}

// sinkNameRE is what a sink name may be: it appears in logs, metrics labels
// and file names.
var sinkNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// checkSinks checks each sink's name and its one variant.
func (c *Config) checkSinks(p *problems) {
	first := map[string]int{}
	for i, s := range c.Sinks {
		path := field.Index("sinks", i)
		switch j, dup := first[s.Name]; {
		case s.Name == "":
			p.at(path+".name", "is required")
		case !sinkNameRE.MatchString(s.Name):
			p.atf(path+".name", "%q is not a valid sink name (lower-case letters, digits, - and _)", s.Name)
		case dup:
			p.atf(path+".name", "sink %q is already defined at sinks[%d]", s.Name, j)
		default:
			first[s.Name] = i
		}
		var keys []string
		for _, v := range s.variants() {
			keys = append(keys, v.key)
			if v.set {
				p.fields(path+"."+v.key, v.cfg.Validate())
			}
		}
		switch n := len(slices.DeleteFunc(s.variants(), func(v sinkVariant) bool { return !v.set })); {
		case n == 0:
			p.atf(path, "a sink needs its type as a key: %s (with its settings under it)", field.OrList(keys))
		case n > 1:
			p.atf(path, "a sink has one type: set only one of %s", field.OrList(keys))
		}
	}
}

// buildTargets checks the targets and builds them, each with its policy
// merged and validated against the schedule's interval.
func (c *Config) buildTargets(p *problems) []rotation.Target {
	var sinkNames []string
	for _, s := range c.Sinks {
		sinkNames = append(sinkNames, s.Name)
	}
	defaults := c.Defaults.over(rotation.DefaultPolicy())
	first := map[string]int{}
	pats := map[PATConfig]string{} // where each PAT is first declared
	targets := make([]rotation.Target, 0, len(c.TargetConfigs))
	for i, tc := range c.TargetConfigs {
		path := field.Index("targets", i)
		switch j, dup := first[tc.Name]; {
		case strings.TrimSpace(tc.Name) == "":
			p.at(path+".name", "is required")
		case dup:
			p.atf(path+".name", "target %q is already defined at targets[%d]", tc.Name, j)
		default:
			first[tc.Name] = i
		}
		kind := rotation.Kind(cmp.Or(tc.Kind, string(rotation.KindAPIToken)))
		t := rotation.Target{Name: tc.Name, Kind: kind, Overwrite: tc.Overwrite, Dests: buildDests(tc.Sinks, path+".sinks", sinkNames, p)}
		variantKeys(tc, kind, path, p)
		switch kind {
		case rotation.KindAPIToken:
			if tc.Select == nil && len(tc.Tokens) == 0 {
				p.at(path, "an api-token target needs select (to find tokens) or tokens (to declare them), or both")
			}
			if tc.Select != nil {
				t.Select = buildSelector(*tc.Select, path+".select", p)
			}
			for k, tok := range tc.Tokens {
				t.Specs = append(t.Specs, buildAPITokenSpec(tok, field.Index(path+".tokens", k), p))
			}
		case rotation.KindPAT:
			if len(tc.PATs) == 0 {
				p.at(path+".pats", "a pat target needs at least one entry in pats")
			}
			for k, pat := range tc.PATs {
				pp := field.Index(path+".pats", k)
				spec, ok := buildPATSpec(pat, pp, p)
				if prev, dup := pats[pat]; ok && dup {
					p.atf(pp, "PAT %q of %s is already declared at %s", pat.Description, pat.Owner, prev)
				} else if ok {
					pats[pat] = pp
				}
				t.Specs = append(t.Specs, spec)
			}
		case rotation.KindEdge:
			if len(tc.Edge) == 0 {
				p.at(path+".edge", "an edge target needs at least one entry in edge")
			}
			if !c.Unleash.Edge.Configured() {
				p.at(path+".kind", "edge targets need the Edge client secret: set unleash.edge.client_secret_file "+
					"or ROTATOR_UNLEASH_EDGE_CLIENT_SECRET(_FILE)")
			}
			for k, e := range tc.Edge {
				ep := field.Index(path+".edge", k)
				checkEnvironment(ep+".environment", e.Environment, p)
				checkProjects(ep+".projects", e.Projects, p)
				t.Specs = append(t.Specs, rotation.Spec{Kind: rotation.KindEdge, Name: "edge", Type: "backend", Projects: slices.Sorted(slices.Values(e.Projects)), Environment: e.Environment})
			}
		default:
			p.fields(path, field.OneOf("kind", tc.Kind, string(rotation.KindAPIToken), string(rotation.KindPAT), string(rotation.KindEdge)))
			targets = append(targets, t)
			continue
		}
		t.Policy = c.targetPolicy(tc, kind, defaults, path, p)
		targets = append(targets, t)
	}
	return targets
}

// variantKeys reports keys set in a target that its kind does not take.
func variantKeys(tc TargetConfig, kind rotation.Kind, path string, p *problems) {
	for _, k := range []struct {
		key   string
		set   bool
		kinds string
	}{
		{"select", tc.Select != nil, "api-token"},
		{"tokens", tc.Tokens != nil, "api-token"},
		{"pats", tc.PATs != nil, "pat"},
		{"edge", tc.Edge != nil, "edge"},
		{"policy", tc.Policy != nil && kind == rotation.KindEdge, "api-token and pat"},
	} {
		if k.set && !strings.Contains(k.kinds, string(kind)) {
			p.atf(path+"."+k.key, "key %s applies to %s targets, not %s targets", k.key, k.kinds, kind)
		}
	}
}

// targetPolicy merges the target's policy keys over the defaults and
// validates the result for the target's kind. Its problems are the target's
// when it sets a policy, else the defaults'.
func (c *Config) targetPolicy(tc TargetConfig, kind rotation.Kind, defaults rotation.Policy, path string, p *problems) rotation.Policy {
	pol, where := defaults, "defaults"
	if tc.Policy != nil {
		pol, where = tc.Policy.over(defaults), path+".policy"
	}
	// Jitter delays a pass by up to its length, so the gap between two
	// passes can reach the interval plus the jitter.
	if p.badUnder(where) {
		return pol // a value of it could not be decoded: that was reported
	}
	if err := pol.Validate(kind, c.Interval+time.Duration(c.Jitter)); err != nil {
		for _, e := range field.All(err) {
			p.at(where, e.Error())
		}
	}
	return pol
}

// buildDests checks a target's destinations: at least one, each naming a
// configured sink with a path template that parses.
func buildDests(dests []DestConfig, path string, sinkNames []string, p *problems) []rotation.Destination {
	if len(dests) == 0 {
		p.at(path, "a target needs at least one sink to publish to")
	}
	out := make([]rotation.Destination, 0, len(dests))
	for i, d := range dests {
		dp := field.Index(path, i)
		switch {
		case d.Sink == "":
			p.at(dp+".sink", "is required: the name of a sink")
		case !slices.Contains(sinkNames, d.Sink):
			p.atf(dp+".sink", "no sink is named %q%s", d.Sink, field.Suggest(d.Sink, sinkNames, "%q"))
		}
		tmpl, err := rotation.ParsePathTemplate(d.Path)
		if err != nil {
			p.at(dp+".path", err.Error())
		}
		out = append(out, rotation.Destination{Sink: d.Sink, Path: tmpl})
	}
	return out
}

// buildSelector checks a target's select section. Types are normalised:
// "client" is what older Unleash versions call backend tokens.
func buildSelector(sc SelectConfig, path string, p *problems) *rotation.Selector {
	s := &rotation.Selector{Projects: sc.Projects, Environments: sc.Environments}
	nonEmptyItems(path+".projects", sc.Projects, p)
	nonEmptyItems(path+".environments", sc.Environments, p)
	for i, typ := range sc.Types {
		if err := field.OneOf("", typ, "backend", "frontend", "client"); err != nil {
			p.fields(field.Index(path+".types", i), err)
		} else if n := normaliseType(typ); !slices.Contains(s.Types, n) {
			s.Types = append(s.Types, n)
		}
	}
	if sc.Name != "" {
		re, err := regexp.Compile(sc.Name)
		if err != nil {
			p.atf(path+".name", "invalid regular expression: %v", err)
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

func buildAPITokenSpec(tc APITokenConfig, path string, p *problems) rotation.Spec {
	if strings.TrimSpace(tc.Name) == "" {
		p.at(path+".name", "is required: the token's name in Unleash")
	}
	if tc.Type == "" {
		p.at(path+".type", "is required: backend, frontend or client")
	} else {
		p.fields(path, field.OneOf("type", tc.Type, "backend", "frontend", "client"))
	}
	checkProjects(path+".projects", tc.Projects, p)
	checkEnvironment(path+".environment", tc.Environment, p)
	return rotation.Spec{Kind: rotation.KindAPIToken, Name: tc.Name, Type: normaliseType(tc.Type), Projects: slices.Sorted(slices.Values(tc.Projects)), Environment: tc.Environment}
}

// buildPATSpec checks a declared PAT; ok is false when it is invalid.
func buildPATSpec(pc PATConfig, path string, p *problems) (spec rotation.Spec, ok bool) {
	ok = true
	if err := checkOwner(pc.Owner); err != nil {
		p.at(path+".owner", err.Error())
		ok = false
	}
	if strings.TrimSpace(pc.Description) == "" {
		p.at(path+".description", "is required: the PAT's description, which names it in Unleash")
		ok = false
	}
	return rotation.Spec{Kind: rotation.KindPAT, Name: pc.Description, Type: "pat", Owner: pc.Owner}, ok
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

// nonEmptyItems checks that no item of a list is empty.
func nonEmptyItems(path string, items []string, p *problems) {
	for i, s := range items {
		if strings.TrimSpace(s) == "" {
			p.at(field.Index(path, i), "must not be empty")
		}
	}
}

// checkProjects checks a token's project list: not empty, and "*" (all
// projects) only on its own.
func checkProjects(path string, projects []string, p *problems) {
	if len(projects) == 0 {
		p.at(path, `must list at least one project ("*" for all)`)
		return
	}
	nonEmptyItems(path, projects, p)
	if len(projects) > 1 && slices.Contains(projects, "*") {
		p.at(path, `"*" (all projects) must be alone`)
	}
}

// checkEnvironment checks a token's environment: one, named.
func checkEnvironment(path, env string, p *problems) {
	switch strings.TrimSpace(env) {
	case "":
		p.at(path, "is required")
	case "*":
		p.at(path, `must name one environment, not "*"`)
	}
}
