package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnleashHost(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "unleash.example.com:8443", unleashHost("https://unleash.example.com:8443/prefix/"))
	assert.Empty(t, unleashHost("%zz"))
}
