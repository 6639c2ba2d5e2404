package sinks_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

func TestFieldsRender(t *testing.T) {
	t.Parallel()
	f, err := sinks.ParseFields(map[string]string{
		"url":     "https://unleash.example.com/api",
		"expires": "{{.ExpiresAt}}",
		"env":     "{{.Environment}}/{{index .Projects 0}}",
	})
	require.NoError(t, err)
	got, err := f.Render(rotation.Metadata{
		Environment: "production", Projects: []string{"default"},
		ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"url": "https://unleash.example.com/api", "expires": "2026-12-01T09:00:00Z", "env": "production/default",
	}, got)

	got, err = f.Render(rotation.Metadata{})
	assert.ErrorContains(t, err, "fields.env", "index out of range on a token without projects")
	assert.Nil(t, got)
}

func TestParseFieldsReportsEachField(t *testing.T) {
	t.Parallel()
	_, err := sinks.ParseFields(map[string]string{"a": "{{.Nope}}", "b": "{{", "c": "fine"})
	var paths []string
	for _, e := range field.All(err) {
		var fe *field.Error
		require.True(t, errors.As(e, &fe), "%v", e)
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"fields.a", "fields.b"}, paths)

	_, err = sinks.ParseFields(map[string]string{"projects": `{{join .Projects ","}}`})
	assert.ErrorContains(t, err, "fields.projects", "join is not a template function")
}
