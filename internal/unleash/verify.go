package unleash

import (
	"context"
	"fmt"
	"net/http"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// API names the Unleash API a credential is meant for.
type API int

// The APIs a credential can be verified against.
const (
	// ClientAPI serves backend SDKs and Edge (backend tokens).
	ClientAPI API = iota + 1
	// FrontendAPI serves frontend SDKs (frontend tokens).
	FrontendAPI
	// AdminAPI serves people and automation (personal access tokens).
	AdminAPI
)

func (a API) String() string {
	switch a {
	case ClientAPI:
		return "client API"
	case FrontendAPI:
		return "frontend API"
	case AdminAPI:
		return "admin API"
	}
	return fmt.Sprintf("API(%d)", int(a))
}

// route is a cheap authenticated GET on the API.
func (a API) route() (string, error) {
	switch a {
	case ClientAPI:
		return "api/client/features", nil
	case FrontendAPI:
		return "api/frontend", nil
	case AdminAPI:
		// Listing one's own PATs needs no permission and costs one query,
		// so it tests authentication alone. (Admin API tokens get 403 here:
		// they are not users.)
		return "api/admin/user/tokens", nil
	}
	return "", fmt.Errorf("unleash: unknown API %d", int(a))
}

// APIFor returns the API a token of type t authenticates against.
func APIFor(t TokenType) API {
	switch t {
	case TypeFrontend:
		return FrontendAPI
	case TypeAdmin:
		return AdminAPI
	}
	return ClientAPI
}

// Verify checks that s authenticates against api, with one cheap request
// made with s instead of the client's own credential. It returns nil when it
// does; an error matching [ErrUnauthorized] when Unleash does not accept it
// (unknown, expired, or deleted more than ~60 s ago); [ErrForbidden] when it is
// valid but meant for another API (a frontend token on the client API); and
// any other error when it could not tell (transport failures, 5xx).
func (c *Client) Verify(ctx context.Context, s secret.Secret, api API) error {
	if s.IsZero() {
		return fmt.Errorf("unleash: verify: empty secret")
	}
	p, err := api.route()
	if err != nil {
		return err
	}
	r := &request{method: http.MethodGet, path: p, display: p, auth: authOther, other: s, retry: retrySafe, drain: true}
	return c.do(ctx, r, nil)
}
