package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Under kubectl exec without -t there is no terminal: an emergency revoke
// used to proceed silently. It now needs --yes, and says so before it
// reads the configuration or touches anything.
func TestRotateRevokeOldWithoutTerminalNeedsYes(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader("y\n"), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := a.dispatch([]string{"rotate", "--target", "checkout", "--revoke-old", "--config", "/nonexistent/config.yaml"})
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "--revoke-old without a terminal needs --yes")
	assert.NotContains(t, stderr.String(), "/nonexistent", "refused before the configuration is read")
	assert.Empty(t, stdout.String())

	// With --yes it goes on (here, to the missing configuration).
	stderr.Reset()
	code = a.dispatch([]string{"rotate", "--target", "checkout", "--revoke-old", "--yes", "--config", "/nonexistent/config.yaml"})
	assert.Equal(t, exitUsage, code)
	assert.NotContains(t, stderr.String(), "needs --yes")
	assert.Contains(t, stderr.String(), "/nonexistent/config.yaml")

	var help bytes.Buffer
	a.stdout = &help
	assert.Equal(t, exitOK, a.dispatch([]string{"rotate", "--help"}))
	assert.Contains(t, help.String(), "--revoke-old refuses to run unless --yes is\ngiven")
}
