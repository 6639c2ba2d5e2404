package unleash

import (
	"context"
	"net/http"
)

// DefaultAPITokenLimit is Unleash's default cap on API tokens per instance
// (UNLEASH_API_TOKENS_LIMIT). Expired tokens count towards it.
const DefaultAPITokenLimit = 2000

// PATLimit is how many personal access tokens Unleash allows per account.
// Expired ones count towards it, so retired tokens must be deleted. Unleash
// does not expose this number.
const PATLimit = 10

// ResourceLimits are the instance's configured limits that matter for
// rotation.
type ResourceLimits struct {
	// APITokens caps backend, frontend and admin tokens together; PATs do
	// not count. Zero when the server does not report it.
	APITokens int
}

// ResourceLimits reads the instance's limits from its UI configuration,
// which any authenticated caller may read.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/get-ui-config
func (c *Client) ResourceLimits(ctx context.Context) (ResourceLimits, error) {
	var out struct {
		ResourceLimits struct {
			APITokens int `json:"apiTokens"`
		} `json:"resourceLimits"`
	}
	r := &request{method: http.MethodGet, path: "api/admin/ui-config", display: "api/admin/ui-config", retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return ResourceLimits{}, err
	}
	return ResourceLimits{APITokens: out.ResourceLimits.APITokens}, nil
}
