package field

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"renew_before", "renew_before_percent", "lifetime", "no_expiry", "retire"}
	tests := []struct{ in, want string }{
		{"renew_befor", ` (did you mean "renew_before"?)`},
		{"renew_before_percnet", ` (did you mean "renew_before_percent"?)`}, // a transposition is one step
		{"lifetme", ` (did you mean "lifetime"?)`},
		{"Lifetime", ` (did you mean "lifetime"?)`},
		{"no_exp", ` (did you mean "no_expiry"?)`}, // cut short
		{"colour", ""},
		{"re", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Suggest(tt.in, keys, "%q"), tt.in)
	}
	assert.Empty(t, Suggest("x", nil, "%q"))
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 0, editDistance("grace", "grace"))
	assert.Equal(t, 1, editDistance("grce", "grace"))
	assert.Equal(t, 1, editDistance("toknes", "tokens"))
	assert.Equal(t, 3, editDistance("", "abc"))
	assert.Equal(t, 6, editDistance("kitten", "sitting")+3)
}
