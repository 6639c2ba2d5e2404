package unleash

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// PATOwner says whose personal access tokens a call manages: the user behind
// the client's own credential ([CurrentUser]) or a service account
// ([ServiceAccount]). Both routes take and return the same schemas.
type PATOwner struct {
	serviceAccount int64 // 0: the current user
}

// CurrentUser owns the tokens of the user the client authenticates as. The
// route needs a user credential (a PAT or a session); admin API tokens get 403.
func CurrentUser() PATOwner { return PATOwner{} }

// ServiceAccount owns the tokens of service account id. Service accounts
// are an Unleash Enterprise feature: open-source Unleash answers 404.
func ServiceAccount(id int64) PATOwner { return PATOwner{serviceAccount: id} }

func (o PATOwner) String() string {
	if o.serviceAccount == 0 {
		return "current user"
	}
	return "service account " + strconv.FormatInt(o.serviceAccount, 10)
}

func (o PATOwner) route() string {
	if o.serviceAccount == 0 {
		return "api/admin/user/tokens"
	}
	return "api/admin/service-account/" + strconv.FormatInt(o.serviceAccount, 10) + "/token"
}

// PAT is a personal access token. Unleash allows at most 10 per account and
// requires descriptions to be unique per account.
type PAT struct {
	ID          int64
	Description string
	UserID      int64
	CreatedAt   time.Time
	ExpiresAt   time.Time
	SeenAt      time.Time // zero: never used
	// Secret is set only in the response to a create: Unleash never shows
	// it again.
	Secret secret.Secret
}

// patJSON is Unleash's patSchema.
type patJSON struct {
	ID          int64         `json:"id"`
	Description string        `json:"description"`
	UserID      int64         `json:"userId"`
	CreatedAt   jsonTime      `json:"createdAt"`
	ExpiresAt   jsonTime      `json:"expiresAt"`
	SeenAt      jsonTime      `json:"seenAt"`
	Secret      secret.Secret `json:"secret"`
}

func (j patJSON) pat() PAT {
	return PAT{ID: j.ID, Description: j.Description, UserID: j.UserID, CreatedAt: j.CreatedAt.Time,
		ExpiresAt: j.ExpiresAt.Time, SeenAt: j.SeenAt.Time, Secret: j.Secret}
}

// ListPATs returns owner's tokens, without their secrets.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/get-pats and
// https://docs.getunleash.io/reference/api/unleash/get-service-account-tokens
func (c *Client) ListPATs(ctx context.Context, owner PATOwner) ([]PAT, error) {
	var out struct {
		PATs []patJSON `json:"pats"`
	}
	r := &request{method: http.MethodGet, path: owner.route(), display: owner.route(), retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	pats := make([]PAT, 0, len(out.PATs))
	for _, j := range out.PATs {
		pats = append(pats, j.pat())
	}
	return pats, nil
}

// CreatePATRequest describes a new personal access token.
type CreatePATRequest struct {
	// Description must be unique among the owner's tokens.
	Description string
	// ExpiresAt is required and must be in the future.
	ExpiresAt time.Time
}

// CreatePAT creates a token for owner and returns it with its secret, which
// Unleash shows only this once: store it before doing anything else. Like
// every create, it is not retried once it may have reached the server; on an
// error matching [ErrOutcomeUnknown], look the token up by description.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/create-pat and
// https://docs.getunleash.io/reference/api/unleash/create-service-account-token
func (c *Client) CreatePAT(ctx context.Context, owner PATOwner, req CreatePATRequest) (PAT, error) {
	if strings.TrimSpace(req.Description) == "" {
		return PAT{}, errors.New("unleash: a personal access token needs a description")
	}
	if req.ExpiresAt.IsZero() {
		return PAT{}, errors.New("unleash: a personal access token needs an expiry")
	}
	body := struct {
		Description string `json:"description"`
		ExpiresAt   string `json:"expiresAt"`
	}{req.Description, formatTime(req.ExpiresAt)}
	var out patJSON
	r := &request{method: http.MethodPost, path: owner.route(), display: owner.route(), body: body, retry: retryUnsent}
	if err := c.do(ctx, r, &out); err != nil {
		return PAT{}, err
	}
	if out.Secret.IsZero() {
		return PAT{}, fmt.Errorf("unleash: POST %s: response carries no secret", r.displayPath())
	}
	return out.pat(), nil
}

// DeletePAT deletes owner's token id. Unleash answers 200 for an unknown id
// too, so it is idempotent.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/delete-pat and
// https://docs.getunleash.io/reference/api/unleash/delete-service-account-token
func (c *Client) DeletePAT(ctx context.Context, owner PATOwner, id int64) error {
	if id <= 0 {
		return fmt.Errorf("unleash: invalid personal access token id %d", id)
	}
	p := owner.route() + "/" + strconv.FormatInt(id, 10)
	return c.do(ctx, &request{method: http.MethodDelete, path: p, display: p, retry: retrySafe}, nil)
}
