package unleashtest

import (
	"fmt"
	"strings"
)

// SeedProjectsSQL returns SQL that creates the given projects and links each
// to every given environment, creating the environments that do not exist
// yet. OSS Unleash has no API for either, and its token endpoints accept rows
// inserted this way. Existing rows are left alone (ON CONFLICT DO NOTHING), so
// the SQL can run more than once. Use it as [Options.SeedSQL] or with
// [Server.SQL].
func SeedProjectsSQL(projects []string, envs []string) string {
	var b strings.Builder
	for i, env := range envs {
		// development and production exist from the start; a new
		// environment's type is free text, and sorts after them.
		fmt.Fprintf(&b, "INSERT INTO environments (name, type, sort_order, enabled) VALUES (%s, 'test', %d, true) ON CONFLICT DO NOTHING;\n",
			quote(env), 100+i)
	}
	for _, p := range projects {
		fmt.Fprintf(&b, "INSERT INTO projects (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING;\n", quote(p), quote(p))
		for _, env := range envs {
			fmt.Fprintf(&b, "INSERT INTO project_environments (project_id, environment_name) VALUES (%s, %s) ON CONFLICT DO NOTHING;\n",
				quote(p), quote(env))
		}
	}
	return b.String()
}

// quote returns s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
