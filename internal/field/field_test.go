package field

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWithinRootsEveryProblem(t *testing.T) {
	t.Parallel()
	inner := Join(Errorf("role", "is required"), errors.New("plain"), nil)
	err := Within("auth", Join(inner, Errorf("", "whole")))
	all := All(err)
	require.Len(t, all, 3)
	var paths []string
	for _, e := range all {
		var fe *Error
		require.ErrorAs(t, e, &fe)
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"auth.role", "auth", "auth"}, paths)
	assert.Equal(t, "auth.role: is required", all[0].Error())
}

func TestAllKeepsWrappedJoinsWhole(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("context: %w", errors.Join(errors.New("a"), errors.New("b")))
	assert.Len(t, All(wrapped), 1, "a wrapped join is one problem with its context")
	assert.Nil(t, All(nil))
	assert.NoError(t, Join())
}

func TestPath(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "sinks[1].vault", Path(Index("sinks", 1), "vault"))
	assert.Equal(t, "a", Path("", "a"))
	assert.Equal(t, "a", Path("a", ""))
	assert.Equal(t, "a[0]", Path("a", "[0]"))
}
