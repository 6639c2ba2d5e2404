package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// checker collects problems and knows where each key path came from: a line
// of the file, or an environment variable that overrode it.
type checker struct {
	file   string
	lines  map[string]int    // key path → line
	origin map[string]string // key path → the environment variable that set it
	// bad holds the key paths whose value could not be decoded: the
	// problem is reported once, not again by every check of the value.
	bad      map[string]bool
	problems []Problem
}

func newChecker(file string) *checker {
	return &checker{file: file, lines: map[string]int{}, origin: map[string]string{}, bad: map[string]bool{}}
}

// at records a problem with the value at key path path. A value the
// environment set is reported under the variable's name; otherwise under
// the path, at the line of the path or of its nearest ancestor in the file.
// A value that could not be decoded has been reported already, and is not
// again.
func (c *checker) at(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if c.bad[p] {
			return
		}
	}
	msg := fmt.Sprintf(format, args...)
	if env, ok := c.origin[path]; ok {
		c.add(Problem{Key: env, Message: msg})
		return
	}
	c.add(Problem{File: c.file, Line: c.line(path), Key: path, Message: msg})
}

// atLine records a problem at an explicit line.
func (c *checker) atLine(line int, path, format string, args ...any) {
	c.add(Problem{File: c.file, Line: line, Key: path, Message: fmt.Sprintf(format, args...)})
}

// env records a problem with the environment itself.
func (c *checker) env(format string, args ...any) {
	c.add(Problem{Message: fmt.Sprintf(format, args...)})
}

func (c *checker) add(p Problem) {
	if !slices.Contains(c.problems, p) {
		c.problems = append(c.problems, p)
	}
}

// line returns the line of path, or of its nearest ancestor, or 0.
func (c *checker) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

// err returns the problems as an [*Error], ordered by line (problems
// without a line last, in the order found), or nil.
func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	ps := slices.Clone(c.problems)
	order := func(p Problem) int {
		if p.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return p.Line
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(order(a), order(b)) })
	return &Error{Problems: ps}
}

// joinPath appends key to path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends an index to path.
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parentPath strips the last key or index of path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
