package secret_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}

	s, err := secret.ReadFile(write("token", "  "+plain+"\n"))
	require.NoError(t, err)
	assert.Equal(t, plain, s.Reveal(), "trimmed")

	tests := []struct {
		name, path, wantErr string
	}{
		{"empty name", "", "secret file name is empty"},
		{"missing", filepath.Join(dir, "missing"), "cannot read secret file"},
		{"blank", write("blank", " \n\t\n"), "is empty"},
		{"too large", write("large", plain+strings.Repeat("x", secret.MaxFileSize)), "is larger than 64 KiB"},
		{"directory", dir, "cannot read secret file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := secret.ReadFile(tt.path)
			require.ErrorContains(t, err, tt.wantErr)
			assert.True(t, s.IsZero())
			assert.NotContains(t, err.Error(), "8af5d51b", "errors never quote the content")
		})
	}
}

func TestReadFileExpandsHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".vault-token"), []byte("hvs.abc\n"), 0o600))
	s, err := secret.ReadFile("~/.vault-token")
	require.NoError(t, err)
	assert.Equal(t, "hvs.abc", s.Reveal())
}
