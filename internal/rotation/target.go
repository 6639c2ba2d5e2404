package rotation

import (
	"fmt"
	"regexp"
	"slices"
)

// Target is one entry of the configuration: which tokens to keep rotated,
// how, and where their secrets go.
type Target struct {
	Name string
	Kind Kind
	// Select discovers existing API tokens; nil for a target that only
	// declares its lineages.
	Select *Selector
	// Specs declares lineages explicitly. An API-token spec is created when
	// no token exists; PAT and edge targets are always declared.
	Specs  []Spec
	Policy Policy
	Dests  []Destination
	// Overwrite lets the target's destinations replace content the rotator
	// did not write.
	Overwrite bool
}

// Selector picks API tokens for a target. Empty lists match everything.
type Selector struct {
	Projects     []string
	Environments []string
	Types        []string
	// Name matches the base name (without rotation mark); nil matches all.
	Name *regexp.Regexp
}

// Match reports whether t is selected. Admin tokens never are.
func (s Selector) Match(t Token) bool {
	if t.Kind != KindAPIToken || t.Type == "admin" {
		return false
	}
	base, _, _ := ParseName(t.Name)
	return (len(s.Projects) == 0 || slices.ContainsFunc(t.Projects, func(p string) bool { return slices.Contains(s.Projects, p) })) &&
		(len(s.Environments) == 0 || slices.Contains(s.Environments, t.Environment)) &&
		(len(s.Types) == 0 || slices.Contains(s.Types, t.Type)) &&
		(s.Name == nil || s.Name.MatchString(base))
}

// Scopes returns what the targets need listed, per kind: the projects of
// API-token targets and the owners of PAT targets. A nil list means
// everything; a kind that is absent needs no listing.
func Scopes(targets []Target) map[Kind][]string {
	out := map[Kind][]string{}
	all := map[Kind]bool{}
	for _, t := range targets {
		scopes := out[t.Kind]
		if scopes == nil {
			scopes = []string{}
		}
		if t.Select != nil {
			all[t.Kind] = all[t.Kind] || len(t.Select.Projects) == 0
			scopes = append(scopes, t.Select.Projects...)
		}
		for _, s := range t.Specs {
			if t.Kind == KindPAT {
				scopes = append(scopes, s.Owner)
			} else {
				scopes = append(scopes, s.Projects...)
			}
		}
		out[t.Kind] = scopes
	}
	for k, v := range out {
		if all[k] {
			out[k] = nil
			continue
		}
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out
}

// Lineages expands targets into lineages using the listed tokens. A lineage
// claimed by two targets belongs to the first; the second gets a conflict.
// Destinations that cannot be rendered for a lineage become its error.
func Lineages(targets []Target, tokens map[Kind][]Token) (lineages []Lineage, conflicts []Conflict) {
	owner := map[string]string{}
	index := map[string]int{}
	add := func(t Target, spec Spec, declared bool) {
		key := spec.Key()
		if first, ok := owner[key]; ok {
			if first != t.Name {
				conflicts = append(conflicts, Conflict{Target: t.Name, Spec: spec, Owner: first})
			} else if declared {
				lineages[index[key]].Declared = true
			}
			return
		}
		owner[key] = t.Name
		index[key] = len(lineages)
		l := Lineage{Target: t.Name, Spec: spec, Policy: t.Policy, Declared: declared}
		l.Dests, l.Err = renderDests(t, l)
		lineages = append(lineages, l)
	}
	for _, t := range targets {
		if t.Select != nil {
			for _, tok := range tokens[t.Kind] {
				if t.Select.Match(tok) {
					add(t, SpecOf(tok), false)
				}
			}
		}
		for _, s := range t.Specs {
			s.Kind = t.Kind
			slices.Sort(s.Projects)
			add(t, s, true)
		}
	}
	refuseSharedDests(lineages)
	return lineages, conflicts
}

// refuseSharedDests blocks lineages whose destinations collide: two tokens
// published to one place would overwrite each other on every pass (a path
// template without {{.Type}} for a backend and a frontend token of the same
// name, say).
func refuseSharedDests(lineages []Lineage) {
	first := map[string]int{}
	for i, l := range lineages {
		for _, d := range l.Dests {
			key := d.String()
			j, seen := first[key]
			if !seen {
				first[key] = i
				continue
			}
			for _, k := range []int{i, j} {
				other := lineages[i+j-k].Spec
				if lineages[k].Err == nil {
					lineages[k].Err = fmt.Errorf("%s is also the destination of %s: the two would overwrite each other; "+
						"make the path tell them apart (add {{.Type}}, {{.Environment}} or {{.Project}})", key, other)
				}
			}
		}
	}
}

// Conflict is a lineage two targets select.
type Conflict struct {
	Target string // the target that lost it
	Spec   Spec
	Owner  string // the target that has it
}

func (c Conflict) Error() string {
	return fmt.Sprintf("target %q also selects %s, which target %q already manages; it is rotated by %q only (narrow one of the selectors)",
		c.Target, c.Spec, c.Owner, c.Owner)
}

// byLineage groups tokens by lineage key, once per pass: a pass over
// thousands of tokens must not look at every token for every lineage.
func byLineage(tokens map[Kind][]Token) map[string][]Token {
	out := map[string][]Token{}
	for _, list := range tokens {
		for _, t := range list {
			k := SpecOf(t).Key()
			out[k] = append(out[k], t)
		}
	}
	return out
}

// renderDests renders t's destinations for l.
func renderDests(t Target, l Lineage) ([]Dest, error) {
	data := NewPathData(t.Name, l.Spec)
	dests := make([]Dest, 0, len(t.Dests))
	for _, d := range t.Dests {
		p, err := d.Path.Render(data)
		if err != nil {
			return nil, fmt.Errorf("destination on sink %q: %w", d.Sink, err)
		}
		dests = append(dests, Dest{Sink: d.Sink, Path: p, Overwrite: t.Overwrite})
	}
	return dests, nil
}
