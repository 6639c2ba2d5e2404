// Package unleashfake fakes the Unleash Enterprise routes that open-source
// Unleash lacks, so that code using them can be tested here: service-account
// personal access tokens.
//
// The fake follows the documented API exactly (docs.getunleash.io, "Service
// Accounts" and the createPatSchema/patSchema/patsSchema schemas): 201 with a
// patSchema body and a Location header on create; {"pats":[…]} without
// secrets on list; 200 with an empty body on delete; and the documented error
// bodies ({id, name, message}) for 400, 401, 403, 404, 409 and 415. The rules
// behind them are those of Unleash's PAT service: descriptions unique per
// account, at most 10 tokens per account (expired ones included), expiry
// required and in the future.
//
// With an upstream, every other request is proxied to a real Unleash, so a
// test can run the whole rotator against "real Unleash plus service
// accounts". Requests authenticated with a PAT the fake issued are answered
// by the fake: GET /api/admin/user/tokens (the rotator's PAT probe) and, as
// 403, everything else.
package unleashfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// patLimit is Unleash's PAT_LIMIT.
const patLimit = 10

// PAT is a token the fake holds.
type PAT struct {
	ID          int64
	Description string
	UserID      int64 // the service account
	Secret      string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	SeenAt      time.Time
}

// ServiceAccounts is the fake. Create it with [NewServiceAccounts]; it is an
// [http.Handler].
type ServiceAccounts struct {
	adminToken string
	proxy      *httputil.ReverseProxy
	now        func() time.Time

	mu       sync.Mutex
	accounts map[int64]bool
	pats     []*PAT
	nextID   int64
	requests []string // "METHOD path" of every request the fake answered itself
}

// NewServiceAccounts returns a fake that accepts adminToken (raw or Bearer) for
// management. upstream, if not empty, is a real Unleash that gets every
// request the fake does not answer; otherwise those get Unleash's 404.
func NewServiceAccounts(adminToken, upstream string) (*ServiceAccounts, error) {
	s := &ServiceAccounts{adminToken: adminToken, now: time.Now, accounts: map[int64]bool{}, nextID: 1}
	if upstream != "" {
		u, err := url.Parse(upstream)
		if err != nil {
			return nil, fmt.Errorf("unleashfake: upstream: %w", err)
		}
		s.proxy = httputil.NewSingleHostReverseProxy(u)
	}
	return s, nil
}

// AddServiceAccount makes account id exist.
func (s *ServiceAccounts) AddServiceAccount(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = true
}

// SetClock replaces time.Now.
func (s *ServiceAccounts) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// PATs returns copies of account id's tokens, secrets included.
func (s *ServiceAccounts) PATs(id int64) []PAT {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PAT
	for _, p := range s.pats {
		if p.UserID == id {
			out = append(out, *p)
		}
	}
	return out
}

// SetSeen sets a token's last-seen time (Unleash records use in batches).
func (s *ServiceAccounts) SetSeen(tokenID int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pats {
		if p.ID == tokenID {
			p.SeenAt = at
		}
	}
}

// Requests returns "METHOD path" for every request the fake answered itself.
func (s *ServiceAccounts) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *ServiceAccounts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, tokenID, isRoute := parseRoute(r.URL.Path)
	caller := s.caller(r)
	switch {
	case isRoute:
		s.record(r)
		s.serveServiceAccount(w, r, id, tokenID)
	case caller != nil:
		s.record(r)
		s.servePATUser(w, r, caller)
	case s.proxy != nil:
		s.proxy.ServeHTTP(w, r)
	case strings.HasPrefix(credential(r), "user:"):
		// A deleted or expired PAT: rejected at once, PATs have no cache.
		writeError(w, http.StatusUnauthorized, "UnauthorizedError", "You must log in to use Unleash.")
	default:
		writeError(w, http.StatusNotFound, "NotFoundError", "The path you were looking for ("+r.URL.Path+") is not available.")
	}
}

func (s *ServiceAccounts) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
}

// parseRoute recognises /api/admin/service-account/{id}/token[/{tokenId}].
func parseRoute(p string) (id, tokenID int64, ok bool) {
	rest, found := strings.CutPrefix(p, "/api/admin/service-account/")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || parts[1] != "token" || len(parts) > 3 {
		return 0, 0, false
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return -1, 0, true
	}
	if len(parts) == 3 {
		if tokenID, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
			return id, -1, true
		}
	}
	return id, tokenID, true
}

func credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if v, ok := strings.CutPrefix(h, "Bearer "); ok {
		return v
	}
	if v, ok := strings.CutPrefix(h, "bearer "); ok {
		return v
	}
	return h
}

// caller returns the live PAT a request authenticates with, if the fake
// issued it.
func (s *ServiceAccounts) caller(r *http.Request) *PAT {
	cred := credential(r)
	if !strings.HasPrefix(cred, "user:") {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pats {
		if p.Secret == cred && s.now().Before(p.ExpiresAt) {
			p.SeenAt = s.now()
			return p
		}
	}
	return nil
}

// servePATUser answers a request made with a service-account PAT.
func (s *ServiceAccounts) servePATUser(w http.ResponseWriter, r *http.Request, p *PAT) {
	if r.Method == http.MethodGet && r.URL.Path == "/api/admin/user/tokens" {
		writeJSON(w, http.StatusOK, map[string]any{"pats": s.list(p.UserID)})
		return
	}
	writeError(w, http.StatusForbidden, "NoAccessError", "You need the \"ADMIN\" permission to perform this action")
}

func (s *ServiceAccounts) serveServiceAccount(w http.ResponseWriter, r *http.Request, id, tokenID int64) {
	switch cred := credential(r); {
	case cred == "":
		writeError(w, http.StatusUnauthorized, "AuthenticationRequired",
			"You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login")
		return
	case cred != s.adminToken:
		if s.caller(r) != nil {
			writeError(w, http.StatusForbidden, "NoAccessError", "You need the \"ADMIN\" permission to perform this action")
			return
		}
		writeError(w, http.StatusUnauthorized, "UnauthorizedError", "You must log in to use Unleash.")
		return
	}
	s.mu.Lock()
	exists := s.accounts[id]
	s.mu.Unlock()
	if !exists || tokenID < 0 {
		writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("Could not find service account with id %d.", id))
		return
	}
	switch {
	case r.Method == http.MethodGet && tokenID == 0:
		writeJSON(w, http.StatusOK, map[string]any{"pats": s.list(id)})
	case r.Method == http.MethodPost && tokenID == 0:
		s.create(w, r, id)
	case r.Method == http.MethodDelete && tokenID > 0:
		s.mu.Lock()
		s.pats = slices.DeleteFunc(s.pats, func(p *PAT) bool { return p.ID == tokenID && p.UserID == id })
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		writeError(w, http.StatusNotFound, "NotFoundError", "The path you were looking for ("+r.URL.Path+") is not available.")
	}
}

// patJSON is patSchema.
type patJSON struct {
	ID          int64   `json:"id"`
	Description string  `json:"description"`
	ExpiresAt   string  `json:"expiresAt"`
	CreatedAt   string  `json:"createdAt"`
	SeenAt      *string `json:"seenAt"`
	UserID      int64   `json:"userId"`
	Secret      string  `json:"secret,omitempty"`
}

func (p *PAT) json(withSecret bool) patJSON {
	j := patJSON{ID: p.ID, Description: p.Description, ExpiresAt: stamp(p.ExpiresAt), CreatedAt: stamp(p.CreatedAt), UserID: p.UserID}
	if !p.SeenAt.IsZero() {
		seen := stamp(p.SeenAt)
		j.SeenAt = &seen
	}
	if withSecret {
		j.Secret = p.Secret
	}
	return j
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *ServiceAccounts) list(id int64) []patJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []patJSON{}
	for _, p := range s.pats {
		if p.UserID == id {
			out = append(out, p.json(false))
		}
	}
	return out
}

func (s *ServiceAccounts) create(w http.ResponseWriter, r *http.Request, id int64) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		ct := r.Header.Get("Content-Type")
		writeError(w, http.StatusUnsupportedMediaType, "ContentTypeError",
			"We do not accept the content-type you provided ("+ct+"). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.")
		return
	}
	var body struct {
		Description *string `json:"description"`
		ExpiresAt   *string `json:"expiresAt"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 100<<10))
	if err != nil || json.Unmarshal(data, &body) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Unexpected end of JSON input"})
		return
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"description", body.Description}, {"expiresAt", body.ExpiresAt}} {
		if f.v == nil {
			writeValidation(w, "/body/"+f.name, "The `/body/"+f.name+"` property is required. It was not present on the data you sent.")
			return
		}
	}
	expires, err := time.Parse(time.RFC3339Nano, *body.ExpiresAt)
	if err != nil {
		writeValidation(w, "/body/expiresAt", "The `expiresAt` property must be a string in date-time format.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var count int
	for _, p := range s.pats {
		if p.UserID == id {
			count++
		}
	}
	switch {
	case strings.TrimSpace(*body.Description) == "":
		writeError(w, http.StatusBadRequest, "BadDataError", "PAT description cannot be empty.")
		return
	case expires.Before(now):
		writeError(w, http.StatusBadRequest, "BadDataError", "The expiry date should be in future.")
		return
	case count >= patLimit:
		writeError(w, http.StatusForbidden, "OperationDeniedError", fmt.Sprintf("Too many PATs (%d) already exist for this user.", patLimit))
		return
	case slices.ContainsFunc(s.pats, func(p *PAT) bool { return p.UserID == id && p.Description == *body.Description }):
		writeError(w, http.StatusConflict, "NameExistsError", "PAT description already exists.")
		return
	}
	var raw [28]byte
	_, _ = rand.Read(raw[:])
	p := &PAT{ID: s.nextID, Description: *body.Description, UserID: id, Secret: "user:" + hex.EncodeToString(raw[:]),
		CreatedAt: now, ExpiresAt: expires}
	s.nextID++
	s.pats = append(s.pats, p)
	w.Header().Set("Location", fmt.Sprintf("api/admin/service-account/%d/token/%d", id, p.ID))
	writeJSON(w, http.StatusCreated, p.json(true))
}

func newErrorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeError(w http.ResponseWriter, status int, name, message string) {
	writeJSON(w, status, map[string]any{"id": newErrorID(), "name": name, "message": message,
		"details": []map[string]string{{"message": message}}})
}

func writeValidation(w http.ResponseWriter, path, message string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"id": newErrorID(), "name": "BadDataError",
		"message": "Request validation failed: your request body or params contain invalid data. Refer to the `details` list for more information.",
		"details": []map[string]string{{"path": path, "message": message}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
