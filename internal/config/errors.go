package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

// Error is returned for an invalid configuration. It lists every problem
// found, so that one run shows everything to fix.
type Error struct {
	Problems []Problem
}

// Problem is one mistake in the configuration.
type Problem struct {
	// File is the configuration file, or "" for a problem in the
	// environment.
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Key locates the value: a key path such as "targets[1].sinks[0].path",
	// or the environment variable the value came from.
	Key     string
	Message string
}

// Error returns one problem per line, as "<file>:<line>: <key>: <message>",
// leaving out the parts that are unknown.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// String formats p as one line of [Error.Error].
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Summary is the header of a report of e: "invalid configuration (2
// problems)".
func (e *Error) Summary() string {
	if len(e.Problems) == 1 {
		return "invalid configuration (1 problem)"
	}
	return "invalid configuration (" + strconv.Itoa(len(e.Problems)) + " problems)"
}

// problems collects what is wrong, each located by the locator.
type problems struct {
	*locator
	list []Problem
	// bad holds the key paths whose value could not be decoded: the
	// problem is reported once, not again by every check of the value.
	bad map[string]bool
}

func newProblems(file string) *problems {
	return &problems{locator: newLocator(file), bad: map[string]bool{}}
}

// at records a problem with the value at key path path. A value the
// environment set is reported under the variable's name; otherwise under
// the path, at the line of the path or of its nearest ancestor. Problems
// under a path that could not be decoded are dropped: that was reported.
func (p *problems) at(path, msg string) {
	for q := path; q != ""; q = parentPath(q) {
		if p.bad[q] {
			return
		}
	}
	if env, ok := p.origin[path]; ok {
		p.add(Problem{Key: env, Message: msg})
		return
	}
	p.add(Problem{File: p.file, Line: p.line(path), Key: path, Message: msg})
}

// badUnder reports whether a value at or under path could not be decoded.
func (p *problems) badUnder(path string) bool {
	for q := range p.bad {
		if q == path || strings.HasPrefix(q, path+".") || strings.HasPrefix(q, path+"[") {
			return true
		}
	}
	return false
}

// atf is at with a format.
func (p *problems) atf(path, format string, args ...any) {
	p.at(path, field.Errorf("", format, args...).Message)
}

// fields records the field errors of err, rooted at path (where the
// part that reported them sits in the file).
func (p *problems) fields(path string, err error) {
	for _, e := range field.All(err) {
		var fe *field.Error
		if errors.As(e, &fe) {
			p.at(field.Path(path, fe.Path), fe.Message)
		} else {
			p.at(path, e.Error())
		}
	}
}

// env records a problem with the environment itself.
func (p *problems) env(msg string) { p.add(Problem{Message: msg}) }

func (p *problems) add(pr Problem) {
	if !slices.Contains(p.list, pr) {
		p.list = append(p.list, pr)
	}
}

// err returns the problems as an [*Error], ordered by line (problems
// without a line last, in the order found), or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	ps := slices.Clone(p.list)
	order := func(p Problem) int {
		if p.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return p.Line
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(order(a), order(b)) })
	return &Error{Problems: ps}
}

// parentPath strips the last key or index of path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
