package unleash

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// edgeCredentials sign /edge/issue-token requests the way Unleash verifies
// them: an HMAC-SHA256 over method, path, timestamp, nonce and body hash.
type edgeCredentials struct {
	clientID string
	key      secret.Secret // the decoded client secret
}

func newEdgeCredentials(clientID string, clientSecret secret.Secret) (*edgeCredentials, error) {
	if clientID == "" || strings.ContainsAny(clientID, ": \t\n") {
		return nil, fmt.Errorf("invalid edge client id %q", clientID)
	}
	raw := strings.TrimRight(strings.TrimSpace(clientSecret.Reveal()), "=")
	if raw == "" {
		return nil, errors.New("edge client secret is empty")
	}
	key, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New("edge client secret is not base64url (it is the server's EDGE_CLIENT_SECRET)")
	}
	return &edgeCredentials{clientID: clientID, key: secret.New(string(key))}, nil
}

// sign sets the HMAC headers on req. The signed path is the route relative to
// the Unleash base URL, as the server's router sees it.
func (e *edgeCredentials) sign(req *http.Request, body []byte, now time.Time) error {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("unleash: edge nonce: %w", err)
	}
	ts := formatTime(now)
	bodyHash := sha256.Sum256(body)
	hashHex := hex.EncodeToString(bodyHash[:])
	nonceHex := hex.EncodeToString(nonce[:])

	mac := hmac.New(sha256.New, []byte(e.key.Reveal()))
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s\n%s", req.Method, edgeIssuePath, ts, nonceHex, hashHex)
	sig := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	req.Header.Set("Authorization", "HMAC "+e.clientID+":"+sig)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Nonce", nonceHex)
	req.Header.Set("Content-Sha256", hashHex)
	return nil
}

const edgeIssuePath = "/edge/issue-token"

// EdgeTokenRequest asks for a backend token for one environment and a set
// of projects.
type EdgeTokenRequest struct {
	Environment string   `json:"environment"`
	Projects    []string `json:"projects"`
}

// EdgeToken is a token issued to, or validated for, Unleash Edge.
type EdgeToken struct {
	Secret      secret.Secret
	Type        TokenType
	Projects    []string
	Environment string
}

type edgeTokenJSON struct {
	Token       secret.Secret `json:"token"`
	Type        string        `json:"type"`
	Projects    []string      `json:"projects"`
	Environment string        `json:"environment"`
}

type edgeTokensJSON struct {
	Tokens []edgeTokenJSON `json:"tokens"`
}

func (l edgeTokensJSON) list() []EdgeToken {
	out := make([]EdgeToken, 0, len(l.Tokens))
	for _, j := range l.Tokens {
		t := EdgeToken{Secret: j.Token, Projects: j.Projects, Environment: j.Environment}
		if typ, err := ParseTokenType(j.Type); err == nil {
			t.Type = typ
		} else {
			t.Type = TokenType(strings.ToLower(j.Type))
		}
		out = append(out, t)
	}
	return out
}

// IssueEdgeTokens obtains backend tokens for Edge. Unleash creates a token per
// (environment, projects) the first time and returns the same one afterwards,
// so the call is idempotent and safe to retry; the tokens are hidden from the
// admin listings. It needs [WithEdgeCredentials] (the server must run with
// EDGE_MASTER_KEY and EDGE_CLIENT_SECRET); without them it sends the
// client's own token, for deployments that accept that.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/issue-token
func (c *Client) IssueEdgeTokens(ctx context.Context, reqs ...EdgeTokenRequest) ([]EdgeToken, error) {
	if len(reqs) == 0 {
		return nil, errors.New("unleash: no edge token requested")
	}
	for _, r := range reqs {
		if r.Environment == "" || len(r.Projects) == 0 {
			return nil, fmt.Errorf("unleash: an edge token needs an environment and at least one project, got %q %q", r.Environment, r.Projects)
		}
	}
	body := struct {
		Tokens []EdgeTokenRequest `json:"tokens"`
	}{reqs}
	var out edgeTokensJSON
	p := strings.TrimPrefix(edgeIssuePath, "/")
	if err := c.do(ctx, &request{method: http.MethodPost, path: p, display: p, body: body, auth: authEdge, retry: retrySafe}, &out); err != nil {
		return nil, err
	}
	return out.list(), nil
}

// ValidateEdgeTokens returns the tokens among secrets that Unleash currently
// accepts; unknown and expired ones are left out. The route needs no
// credential. Like authentication, it answers from Unleash's token cache, so a
// deleted token stays valid here for up to 60 s.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/validate
func (c *Client) ValidateEdgeTokens(ctx context.Context, secrets ...secret.Secret) ([]EdgeToken, error) {
	plain := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if s.IsZero() {
			return nil, errors.New("unleash: empty token to validate")
		}
		plain = append(plain, s.Reveal())
	}
	body := struct {
		Tokens []string `json:"tokens"`
	}{plain}
	var out edgeTokensJSON
	r := &request{method: http.MethodPost, path: "edge/validate", display: "edge/validate", body: body, auth: authNone, secrets: secrets, retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.list(), nil
}
