package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// renewFloor is the least time before expiry at which a token is renewed,
// whatever its TTL: a request started later could outlive it.
const renewFloor = time.Minute

// tokenState is the sink's current Vault token and what it knows of its
// lifetime. Its mutex also serialises renewals and logins.
type tokenState struct {
	mu        sync.Mutex
	token     secret.Secret
	ttl       time.Duration // granted at the last login, renewal or lookup; 0: no expiry
	expiry    time.Time
	renewable bool
	gen       uint64 // counts tokens, so that concurrent 403s log in once
	warned    bool   // the expiry warning of a static token was logged
}

// set records a token that was just issued, renewed or looked up.
func (t *tokenState) set(now time.Time, tok secret.Secret, ttl, remaining time.Duration, renewable bool) {
	if !tok.Equal(t.token) {
		t.gen++
		t.warned = false
	}
	t.token, t.ttl, t.renewable = tok, ttl, renewable
	t.expiry = now.Add(remaining)
}

// due reports whether a token with the given TTL and expiry should be
// renewed at now: within a third of its TTL of expiring, or within
// renewFloor. A TTL of 0 never expires.
func due(now, expiry time.Time, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	return expiry.Sub(now) <= max(ttl/3, renewFloor)
}

// canLogin reports whether the sink can get a new token by itself.
func (s *Sink) canLogin() bool { return s.auth.Method != MethodToken }

// token renews or replaces the token first when it is due, and returns the
// generation of the token the client now holds.
func (s *Sink) token(ctx context.Context) (uint64, error) {
	t := &s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if due(s.now(), t.expiry, t.ttl) {
		if err := s.refresh(ctx); err != nil {
			return 0, err
		}
	}
	return t.gen, nil
}

// setToken records a token that was just issued, renewed or looked up, and
// gives it to the client. Called with s.tok.mu held, or before the sink is
// shared.
func (s *Sink) setToken(tok secret.Secret, ttl, remaining time.Duration, renewable bool) {
	s.c.api.SetToken(tok.Reveal())
	s.tok.set(s.now(), tok, ttl, remaining, renewable)
}

// refresh renews the token, or logs in again, or decides that a static
// token is still usable. Called with s.tok.mu held.
func (s *Sink) refresh(ctx context.Context) error {
	t := &s.tok
	var renewErr error
	if t.renewable {
		before := t.ttl
		renewErr = s.renewSelf(ctx)
		// A renewal that grants less than before has reached the token's
		// max TTL: a new login gives a full one.
		if renewErr == nil && (!s.canLogin() || t.ttl >= before) {
			return nil
		}
	}
	if s.canLogin() {
		if err := s.login(ctx); err != nil {
			return fmt.Errorf("vault token due for renewal: %w", err)
		}
		return nil
	}
	left := t.expiry.Sub(s.now())
	if left <= renewFloor {
		why := "it is not renewable"
		if renewErr != nil {
			why = fmt.Sprintf("renewing it failed: %v", renewErr)
		}
		return fmt.Errorf("vault token expires at %s and %s: give the sink a new token, or use auth method approle or kubernetes", t.expiry.UTC().Format(time.RFC3339), why)
	}
	// Still usable. A failed renewal is tried again before the next
	// request; a token that cannot be renewed is worth a warning.
	if renewErr == nil && !t.warned {
		t.warned = true
		s.logger.Warn("vault token expires soon and cannot be renewed; replace it, or use auth method approle or kubernetes")
	}
	return nil
}

// reloginAfter replaces the token after a 403, unless another request
// already did since generation gen was sent.
func (s *Sink) reloginAfter(ctx context.Context, gen uint64) error {
	t := &s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen != gen {
		return nil
	}
	return s.login(ctx)
}

// login gets a new token with the configured method and records it. Called
// with s.tok.mu held, or before the sink is shared. The login goes through
// the client that holds no token.
func (s *Sink) login(ctx context.Context) error {
	var body map[string]any
	switch s.auth.Method {
	case MethodAppRole:
		body = map[string]any{"role_id": s.auth.RoleID, "secret_id": s.auth.SecretID.Reveal()}
	case MethodKubernetes:
		jwt, err := os.ReadFile(s.auth.JWTPath)
		if err != nil {
			return fmt.Errorf("kubernetes login: read the service account token: %w (fix sinks[].auth.jwt_path)", err)
		}
		body = map[string]any{"role": s.auth.Role, "jwt": strings.TrimSpace(string(jwt))}
	default:
		return fmt.Errorf("auth method %s cannot log in", s.auth.Method)
	}
	path := "auth/" + s.auth.Mount + "/login"
	sec, err := s.c.anon.Logical().WriteWithContext(ctx, path, body)
	if err = s.c.wrap(ctx, path, err); err != nil {
		return explainLogin(s.auth, path, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return fmt.Errorf("%s login at %s: vault returned no token", s.auth.Method, path)
	}
	lease := time.Duration(sec.Auth.LeaseDuration) * time.Second
	s.setToken(secret.New(sec.Auth.ClientToken), lease, lease, sec.Auth.Renewable)
	s.logger.Debug("logged in to vault")
	return nil
}

// explainLogin says what a failed login means.
func explainLogin(a Auth, path string, err error) error {
	switch statusOf(err) {
	case http.StatusBadRequest, http.StatusForbidden:
		hint := "check sinks[].auth.role_id and secret_id"
		if a.Method == MethodKubernetes {
			hint = "check sinks[].auth.role and that the role binds this service account and namespace"
		}
		return fmt.Errorf("%s login at %s refused: %w (%s)", a.Method, path, err, hint)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("%s login at %s: %w (is the auth method enabled there? check sinks[].auth.mount)", a.Method, path, err)
	}
	return fmt.Errorf("%s login: %w", a.Method, err)
}

// renewSelf renews the token and records the new lease. Called with
// s.tok.mu held.
func (s *Sink) renewSelf(ctx context.Context) error {
	const path = "auth/token/renew-self"
	sec, err := s.c.api.Auth().Token().RenewSelfWithContext(ctx, 0)
	if err != nil {
		return s.c.wrap(ctx, path, err)
	}
	if sec == nil || sec.Auth == nil {
		return errors.New("vault's renewal answer has no auth section")
	}
	lease := time.Duration(sec.Auth.LeaseDuration) * time.Second
	s.setToken(s.tok.token, lease, lease, sec.Auth.Renewable)
	s.logger.Debug("renewed vault token")
	return nil
}

// lookupSelf checks the token and records its lifetime. New calls it
// after the login, before the sink is shared.
func (s *Sink) lookupSelf(ctx context.Context) error {
	const path = "auth/token/lookup-self"
	sec, err := s.c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err = s.c.wrap(ctx, path, err); err != nil {
		if statusOf(err) == http.StatusForbidden {
			return fmt.Errorf("vault rejected the token at %s: %w (the token is invalid, expired or revoked, or lacks the default policy, which allows looking itself up)", path, err)
		}
		return fmt.Errorf("check the vault token: %w", err)
	}
	left, err := sec.TokenTTL()
	if err != nil || sec == nil || sec.Data == nil {
		return fmt.Errorf("%s: vault's answer has an unexpected form", path)
	}
	created, _ := sec.Data["creation_ttl"].(json.Number)
	ttl := max(seconds(created), left)
	renewable, _ := sec.TokenIsRenewable()
	if left == 0 {
		ttl = 0 // a token without expiry, such as a root token
	}
	s.setToken(s.tok.token, ttl, left, renewable)
	return nil
}

// seconds converts a JSON number of seconds; anything else is 0.
func seconds(n json.Number) time.Duration {
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return time.Duration(v) * time.Second
}
