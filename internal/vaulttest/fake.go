package vaulttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeRootToken is the only token a [NewFake] server accepts.
const FakeRootToken = "fake-root-token"

// NewFake starts an in-memory stand-in for the part of Vault's HTTP API
// that the Vault sink uses with a token, on an httptest server, and stops
// it when the test ends. It needs nothing installed, so the fast test loop
// (go test -short) can exercise the sink's KV logic; the same tests also
// run against the real server ([New]), which stays the reference:
// TestFakeMatchesVault compares the two.
//
// It serves a KV v2 mount at secret/ (data reads and writes with
// check-and-set, soft delete, destroy, metadata read, write and patch, with
// Vault's limits on custom metadata), token lookup-self,
// sys/internal/ui/mounts and sys/capabilities-self. Every request must
// carry [FakeRootToken]. There is no KV v1, no auth method, no namespace.
func NewFake(tb testing.TB) *Server {
	tb.Helper()
	srv := httptest.NewServer(&fakeVault{keys: map[string]*fakeKey{}})
	tb.Cleanup(srv.Close)
	return &Server{Addr: srv.URL, RootToken: FakeRootToken}
}

// The limits Vault sets on a key's custom metadata.
const (
	maxCustomKeys     = 64
	maxCustomKeyLen   = 128
	maxCustomValueLen = 512
)

type fakeVault struct {
	mu   sync.Mutex
	keys map[string]*fakeKey // by path below secret/
}

type fakeKey struct {
	created  time.Time
	updated  time.Time
	custom   map[string]string
	versions []fakeVersion // versions[i] is version i+1
}

type fakeVersion struct {
	data      map[string]any
	created   time.Time
	deleted   time.Time
	destroyed bool
}

func (v fakeVersion) live() bool { return v.deleted.IsZero() && !v.destroyed }

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != FakeRootToken {
		fakeError(w, http.StatusForbidden, "permission denied")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case p == "auth/token/lookup-self" && r.Method == http.MethodGet:
		fakeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"ttl": 0, "creation_ttl": 0, "renewable": false, "policies": []string{"root"}, "expire_time": nil,
		}})
	case p == "sys/capabilities-self":
		f.capabilities(w, r)
	case strings.HasPrefix(p, "sys/internal/ui/mounts/"):
		if strings.TrimPrefix(p, "sys/internal/ui/mounts/") != "secret" {
			fakeError(w, http.StatusForbidden, "preflight capability check returned 403, please ensure client's policies grant access to path")
			return
		}
		fakeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"path": "secret/", "type": "kv", "options": map[string]any{"version": "2"},
		}})
	case strings.HasPrefix(p, "secret/data/"):
		f.data(w, r, strings.TrimPrefix(p, "secret/data/"))
	case strings.HasPrefix(p, "secret/metadata/"):
		f.metadata(w, r, strings.TrimPrefix(p, "secret/metadata/"))
	case strings.HasPrefix(p, "secret/destroy/") && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		f.destroy(w, r, strings.TrimPrefix(p, "secret/destroy/"))
	default:
		fakeError(w, http.StatusNotFound, "no handler for route \""+p+"\". route entry not found.")
	}
}

func (f *fakeVault) capabilities(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Paths []string `json:"paths"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fakeError(w, http.StatusBadRequest, "malformed request")
		return
	}
	data := map[string]any{"capabilities": []string{"root"}}
	for _, p := range body.Paths {
		data[p] = []string{"root"}
	}
	out := maps.Clone(data)
	out["data"] = data
	fakeJSON(w, http.StatusOK, out)
}

func (f *fakeVault) data(w http.ResponseWriter, r *http.Request, key string) {
	k := f.keys[key]
	switch r.Method {
	case http.MethodGet:
		if k == nil || len(k.versions) == 0 {
			fakeError(w, http.StatusNotFound)
			return
		}
		n := len(k.versions)
		v := k.versions[n-1]
		status, data := http.StatusOK, any(v.data)
		if !v.live() {
			status, data = http.StatusNotFound, nil
		}
		fakeJSON(w, status, map[string]any{"data": map[string]any{"data": data, "metadata": k.versionMeta(n)}})
	case http.MethodPut, http.MethodPost:
		var body struct {
			Data    map[string]any `json:"data"`
			Options struct {
				CAS *int `json:"cas"`
			} `json:"options"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data == nil {
			fakeError(w, http.StatusBadRequest, "no data provided")
			return
		}
		current := 0
		if k != nil {
			current = len(k.versions)
		}
		if body.Options.CAS != nil && *body.Options.CAS != current {
			fakeError(w, http.StatusBadRequest, "check-and-set parameter did not match the current version")
			return
		}
		k = f.key(key)
		now := time.Now().UTC()
		k.versions = append(k.versions, fakeVersion{data: body.Data, created: now})
		k.updated = now
		fakeJSON(w, http.StatusOK, map[string]any{"data": k.versionMeta(len(k.versions))})
	case http.MethodDelete:
		if k != nil && len(k.versions) > 0 {
			k.versions[len(k.versions)-1].deleted = time.Now().UTC()
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fakeError(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

func (f *fakeVault) metadata(w http.ResponseWriter, r *http.Request, key string) {
	k := f.keys[key]
	switch r.Method {
	case http.MethodGet:
		if k == nil {
			fakeError(w, http.StatusNotFound)
			return
		}
		versions := map[string]any{}
		for i, v := range k.versions {
			versions[strconv.Itoa(i+1)] = map[string]any{"created_time": stamp(v.created), "deletion_time": stamp(v.deleted), "destroyed": v.destroyed}
		}
		fakeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"cas_required": false, "created_time": stamp(k.created), "updated_time": stamp(k.updated),
			"current_version": len(k.versions), "oldest_version": 0, "max_versions": 0, "delete_version_after": "0s",
			"custom_metadata": k.customJSON(), "versions": versions,
		}})
	case http.MethodPut, http.MethodPost, http.MethodPatch:
		var body struct {
			Custom map[string]*string `json:"custom_metadata"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fakeError(w, http.StatusBadRequest, "malformed request")
			return
		}
		custom := map[string]string{}
		if k != nil && (r.Method == http.MethodPatch || body.Custom == nil) {
			custom = maps.Clone(k.custom)
		}
		for name, v := range body.Custom {
			if v == nil {
				delete(custom, name) // a JSON merge patch removes keys set to null
				continue
			}
			custom[name] = *v
		}
		if msg := checkCustom(custom); msg != "" {
			fakeError(w, http.StatusBadRequest, msg)
			return
		}
		k = f.key(key)
		k.custom = custom
		k.updated = time.Now().UTC()
		w.WriteHeader(http.StatusNoContent)
	default:
		fakeError(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

func (f *fakeVault) destroy(w http.ResponseWriter, r *http.Request, key string) {
	var body struct {
		Versions []int `json:"versions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Versions) == 0 {
		fakeError(w, http.StatusBadRequest, "no version number provided")
		return
	}
	if k := f.keys[key]; k != nil {
		for _, n := range body.Versions {
			if n >= 1 && n <= len(k.versions) {
				k.versions[n-1].destroyed = true
				k.versions[n-1].data = nil
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// key returns the key at path, creating it.
func (f *fakeVault) key(path string) *fakeKey {
	k := f.keys[path]
	if k == nil {
		now := time.Now().UTC()
		k = &fakeKey{created: now, updated: now, custom: map[string]string{}}
		f.keys[path] = k
	}
	return k
}

// versionMeta is the "metadata" of version n in data reads and writes.
func (k *fakeKey) versionMeta(n int) map[string]any {
	v := k.versions[n-1]
	return map[string]any{
		"version": n, "created_time": stamp(v.created), "deletion_time": stamp(v.deleted),
		"destroyed": v.destroyed, "custom_metadata": k.customJSON(),
	}
}

// customJSON is the custom metadata as Vault shows it: null when empty.
func (k *fakeKey) customJSON() any {
	if len(k.custom) == 0 {
		return nil
	}
	return k.custom
}

// checkCustom applies Vault's limits on custom metadata.
func checkCustom(m map[string]string) string {
	if len(m) > maxCustomKeys {
		return fmt.Sprintf("custom_metadata: payload must contain at most %d keys, provided %d", maxCustomKeys, len(m))
	}
	for k, v := range m {
		if len(k) > maxCustomKeyLen {
			return fmt.Sprintf("custom_metadata: length of key %q is %d but max is %d", k, len(k), maxCustomKeyLen)
		}
		if len(v) > maxCustomValueLen {
			return fmt.Sprintf("custom_metadata: length of value for key %q is %d but max is %d", k, len(v), maxCustomValueLen)
		}
	}
	return ""
}

// stamp formats t as Vault does; the zero time is "".
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func fakeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// fakeError answers with Vault's error body; without messages, as Vault
// answers a read of a missing key: {"errors":[]}.
func fakeError(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	fakeJSON(w, status, map[string]any{"errors": msgs})
}
