package unleash

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/unleash-rotator/unleash-rotator/internal/hygiene"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// The fuzz targets feed every response the client decodes with arbitrary
// status codes, content types, Retry-After headers and bodies, seeded with
// the bodies a real Unleash 8.2.0 sends (reference §8 and §9, and what the
// integration tests saw). Whatever the answer, the client must not panic;
// a non-2xx answer must be an error; every error must be one clear line
// that says which request failed; and no credential found in the body may
// appear in the error: a listing holds the secrets of every token.
//
// `make fuzz` runs each for FUZZTIME; `go test` runs the seeds.

// maxFuzzBody is the response limit of the fuzzed client: small, so that
// the fuzzer reaches "too large" with inputs it can make.
const maxFuzzBody = 64 << 10

// Real bodies. The secrets are of the shapes Unleash makes.
const (
	seedSecret     = "default:development.8af5d51b158578eb4e9121cd22b6e785c9152de5660c408b16c26144"
	seedSecure     = "default:development.v2_tO502wgZY3iUWZButKnAsg_3q5bX0dC7kqVv1m2nP8sLrT9yWzH4jF6gE0aQcDxMuY"
	seedPAT        = "user:5d4ce5c5c1b0a5f1d0d1a0c64b9cbe9e5c0d9b1c1f7a1d2e3f4a5b6c"
	seedCreated    = `{"tokenName":"rot-backend-1","environment":"development","expiresAt":"2027-01-01T00:00:00.000Z","projects":["default"],"secret":"` + seedSecret + `","type":"backend","alias":null,"project":"default","createdAt":"2026-11-22T20:37:59.967Z","secure":false}`
	seedListed     = `{"secret":"` + seedSecret + `","tokenName":"rot-backend-1","type":"client","project":"default","projects":["default"],"environment":"development","expiresAt":"2027-01-01T00:00:00.000Z","createdAt":"2026-11-22T20:37:59.967Z","alias":null,"seenAt":"2026-11-22T20:40:35.852Z","secure":false}`
	seedAdminToken = `{"secret":"*:*.unleash-insecure-admin-api-token","tokenName":"admin","type":"admin","project":"*","projects":["*"],"environment":"*","expiresAt":null,"createdAt":"2026-11-22T20:30:00.000Z","alias":null,"seenAt":null,"secure":false}`
	seedSecureList = `{"secret":"tO502wgZY3iUWZButKnAsg","tokenName":"rot-secure","type":"client","project":"default","projects":["default"],"environment":"development","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","secure":true}`
	seedListing    = `{"tokens":[` + seedAdminToken + `,` + seedListed + `,` + seedSecureList + `]}`
	seedPATs       = `{"pats":[{"id":7,"description":"ci-pipeline","userId":1,"createdAt":"2026-11-22T20:37:59.967Z","expiresAt":"2027-01-01T00:00:00.000Z","seenAt":null}]}`
	seedPATCreated = `{"id":8,"description":"ci-pipeline--rot-20261122T203759Z-ab12","userId":1,"createdAt":"2026-11-22T20:37:59.967Z","expiresAt":"2027-01-01T00:00:00.000Z","seenAt":null,"secret":"` + seedPAT + `"}`
	seedEdge       = `{"tokens":[{"token":"` + seedSecret + `","type":"client","projects":["default"],"environment":"development"}]}`
	seedUIConfig   = `{"slogan":"Getting started with Unleash","name":"Unleash","version":"8.2.0","environment":"Open Source","unleashUrl":"http://127.0.0.1:4242","baseUriPath":"","authenticationType":"open-source","resourceLimits":{"segmentValues":1000,"strategySegments":5,"actionSetActions":10,"actionSetsPerProject":5,"actionSetFilters":5,"actionSetFilterValues":25,"signalEndpoints":5,"signalTokensPerEndpoint":5,"featureEnvironmentStrategies":30,"constraintValues":250,"constraints":30,"environments":50,"projects":500,"apiTokens":2000,"segments":300,"featureFlags":5000},"flags":{}}`
)

// seedErrors are error bodies a real Unleash sends (reference §8).
var seedErrors = []struct {
	status      int
	contentType string
	body        string
}{
	{400, "application/json; charset=utf-8", `{"id":"8bd2d5d7-0b8e-4b0c-9d51-4b4b5d0a8b0b","name":"BadDataError","message":"Request validation failed: your request body or params contain invalid data. Refer to the ` + "`details`" + ` list for more information.","details":[{"path":"/body/tokenName","message":"The ` + "`/body/tokenName`" + ` property is required. It was not present on the data you sent."}]}`},
	{400, "application/json; charset=utf-8", `{"name":"ExceedsLimitError","message":"Failed to create api token. You can't create more than the established limit of 2000.","details":[{"message":"Failed to create api token. You can't create more than the established limit of 2000."}]}`},
	{400, "application/json; charset=utf-8", `{"message":"Unexpected end of JSON input"}`},
	{404, "", ``},
	{401, "application/json; charset=utf-8", `{"id":"1","name":"AuthenticationRequired","message":"You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login","details":[{"message":"You must log in to use Unleash."}],"path":"/auth/simple/login","type":"password","defaultHidden":false}`},
	{401, "application/json; charset=utf-8", `{"message":"This endpoint requires an API token. Please add an authorization header to your request with a valid token"}`},
	{403, "application/json; charset=utf-8", `{"id":"2","name":"PermissionError","message":"You don't have the required permissions to perform this operation. To perform this action, you need the \"CREATE_PROJECT_API_TOKEN\" permission.","details":[{"message":"You don't have the required permissions"}],"permissions":["CREATE_PROJECT_API_TOKEN"]}`},
	{403, "application/json; charset=utf-8", `{"name":"OperationDeniedError","message":"Too many PATs (10) already exist for this user."}`},
	{415, "application/json; charset=utf-8", `{"id":"3","name":"ContentTypeError","message":"We do not accept the content-type you provided (text/plain)."}`},
	{429, "text/html; charset=utf-8", `Too many requests, please try again later.`},
	{500, "application/json; charset=utf-8", `{"name":"UnknownError","message":"INSERT INTO api_token_project VALUES ($1, $2) - duplicate key value violates unique constraint \"api_token_project_pkey\""}`},
	{502, "text/html", `<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>`},
	{503, "text/plain", `upstream connect error or disconnect/reset before headers. reset reason: connection termination`},
	// An error page that echoes what it proxied: a listing, with secrets.
	{500, "text/html", `<pre>Error: upstream sent ` + seedListing + `</pre>`},
	{400, "application/json", `{"message":"invalid token ` + seedSecret + `","details":[{"message":"token ` + seedSecure + ` is not valid"}]}`},
}

// addSeeds adds the success body (as JSON, as text/plain, truncated, as an
// error, too large) and every error body.
func addSeeds(f *testing.F, okStatus int, body string) {
	f.Add(okStatus, "application/json; charset=utf-8", "", []byte(body))
	f.Add(okStatus, "text/plain", "", []byte(body))
	f.Add(okStatus, "text/html; charset=utf-8", "", []byte("<!doctype html><p>"+body))
	f.Add(okStatus, "", "", []byte(body))
	f.Add(okStatus, "application/json", "", []byte(body[:len(body)/2]))
	f.Add(okStatus, "application/json", "", []byte(body[:len(body)-1]))
	f.Add(okStatus, "application/json", "", []byte(""))
	f.Add(okStatus, "application/json", "", []byte("null"))
	f.Add(okStatus, "application/json", "", []byte("[]"))
	f.Add(okStatus, "application/json", "", []byte(`{"tokens":{"a":1}}`))
	f.Add(okStatus, "application/json", "", []byte(body+strings.Repeat(" ", maxFuzzBody)))
	f.Add(500, "application/json", "", []byte(body))
	f.Add(503, "text/plain", "120", []byte(body))
	f.Add(302, "text/html", "", []byte(body))
	for _, e := range seedErrors {
		f.Add(e.status, e.contentType, "", []byte(e.body))
	}
	f.Add(okStatus, "text/plain; token="+seedSecret, "", []byte(body))
	f.Add(429, "text/html", "60", []byte("Too many requests, please try again later."))
	f.Add(429, "text/html", "Sun, 22 Nov 2026 12:00:30 GMT", []byte(""))
	f.Add(429, "text/html", "-1", []byte(""))
}

// fuzzClient returns a client whose every request gets the given answer,
// without retries (so without sleeps).
func fuzzClient(t *testing.T, status int, contentType, retryAfter string, body []byte) *Client {
	t.Helper()
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		if status >= 300 && status < 400 {
			h.Set("Location", "https://login.example.com/?next="+seedSecret)
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
	})
	edgeKey := base64.RawURLEncoding.EncodeToString([]byte("an edge client secret of 32 byte"))
	c, err := NewClient("http://unleash.invalid", secret.New(adminToken),
		WithHTTPClient(&http.Client{Transport: rt}),
		WithRetryPolicy(RetryPolicy{MaxAttempts: 1}),
		WithMaxResponseBytes(maxFuzzBody),
		WithEdgeCredentials("enterprise-edge", secret.New(edgeKey)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fuzzStatus maps any int to an HTTP status from 200 to 599, leaving
// those unchanged.
func fuzzStatus(s int) int {
	if s >= 200 && s <= 599 {
		return s
	}
	if s < 0 {
		s = -(s + 1)
	}
	return 200 + s%400
}

// succeeded says whether an answer of status means success for the call:
// a 2xx, and for Verify, whose request is conditional, 304 Not Modified.
func succeeded(what string, status int) bool {
	return status >= 200 && status <= 299 || what == "Verify" && status == http.StatusNotModified
}

// checkResponse checks what a call returned for an answer of status,
// contentType and body. The error may not reveal any credential of the
// answer.
func checkResponse(t *testing.T, what string, status int, contentType string, body []byte, err error) {
	t.Helper()
	if err == nil {
		if !succeeded(what, status) {
			t.Fatalf("%s: a %d answer is not an error", what, status)
		}
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "unleash: ") {
		t.Fatalf("%s: the error does not say it is Unleash's: %q", what, msg)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s: the error is not one line", what)
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("%s: the error is not valid UTF-8", what)
	}
	const maxErrLen = 2048
	if len(msg) > maxErrLen {
		t.Fatalf("%s: the error is %d bytes long (more than %d): %.300q…", what, len(msg), maxErrLen, msg)
	}
	secrets := hygiene.New()
	secrets.Add("client credential", secret.New(adminToken))
	secrets.Harvest("response body", body)
	secrets.Harvest("response content type", []byte(contentType))
	// Only what the answer held: quoting can make new shapes out of bytes
	// that were none ("\x18:0.000…").
	for _, f := range secrets.FindKnown("error", msg) {
		t.Fatalf("%s: the error reveals a credential of the response (%s): %q", what, f.Fingerprint, msg)
	}
}

// fuzzCalls runs each call against the answer.
func fuzzCalls(f *testing.F, calls map[string]func(context.Context, *Client) error) {
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter string, body []byte) {
		status = fuzzStatus(status)
		c := fuzzClient(t, status, contentType, retryAfter, body)
		for what, call := range calls {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			err := call(ctx, c)
			cancel()
			checkResponse(t, what, status, contentType, body, err)
		}
	})
}

// FuzzAPITokenListings: the instance, project and by-name listings.
func FuzzAPITokenListings(f *testing.F) {
	addSeeds(f, 200, seedListing)
	f.Add(200, "application/json", "", []byte(`{"tokens":[{"secret":"`+seedSecret+`","expiresAt":"tomorrow"}]}`))
	f.Add(200, "application/json", "", []byte(`{"tokens":[{"secret":{"v":"`+seedSecret+`"}}]}`))
	f.Add(200, "application/json", "", []byte(`{"tokens":[{"secret":"`+seedSecure+`","secure":true,"projects":null,"project":"a,b"}]}`))
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"ListAPITokens": func(ctx context.Context, c *Client) error { _, err := c.ListAPITokens(ctx); return err },
		"ListProjectAPITokens": func(ctx context.Context, c *Client) error {
			_, err := c.ListProjectAPITokens(ctx, "default")
			return err
		},
		"ListAPITokensByName": func(ctx context.Context, c *Client) error {
			_, err := c.ListAPITokensByName(ctx, "rot-backend-1")
			return err
		},
	})
}

// FuzzAPITokenCreate: both create routes.
func FuzzAPITokenCreate(f *testing.F) {
	addSeeds(f, 201, seedCreated)
	f.Add(201, "application/json", "", []byte(`{"tokenName":"x","secret":""}`))
	f.Add(201, "application/json", "", []byte(`{"tokenName":"x","secret":"`+seedSecure+`","secure":true}`))
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"CreateProjectAPIToken": func(ctx context.Context, c *Client) error {
			_, err := c.CreateProjectAPIToken(ctx, "default", CreateProjectAPITokenRequest{TokenName: "rot", Type: TypeBackend, Environment: "development", ExpiresAt: expires})
			return err
		},
		"CreateAPIToken": func(ctx context.Context, c *Client) error {
			_, err := c.CreateAPIToken(ctx, CreateAPITokenRequest{TokenName: "rot", Type: TypeFrontend, Environment: "production", Projects: []string{"a", "b"}})
			return err
		},
	})
}

// FuzzPATs: listing and creating personal access tokens.
func FuzzPATs(f *testing.F) {
	addSeeds(f, 200, seedPATs)
	addSeeds(f, 201, seedPATCreated)
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"ListPATs": func(ctx context.Context, c *Client) error { _, err := c.ListPATs(ctx, CurrentUser()); return err },
		"CreatePAT": func(ctx context.Context, c *Client) error {
			_, err := c.CreatePAT(ctx, ServiceAccount(3), CreatePATRequest{Description: "ci", ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)})
			return err
		},
	})
}

// FuzzEdgeTokens: /edge/issue-token and /edge/validate.
func FuzzEdgeTokens(f *testing.F) {
	addSeeds(f, 200, seedEdge)
	f.Add(401, "application/json", "", []byte(`{"error":"Invalid signature"}`))
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"IssueEdgeTokens": func(ctx context.Context, c *Client) error {
			_, err := c.IssueEdgeTokens(ctx, EdgeTokenRequest{Environment: "development", Projects: []string{"default"}})
			return err
		},
		"ValidateEdgeTokens": func(ctx context.Context, c *Client) error {
			_, err := c.ValidateEdgeTokens(ctx, secret.New(seedSecret))
			return err
		},
	})
}

// FuzzUIConfig: the resource limits read from /api/admin/ui-config.
func FuzzUIConfig(f *testing.F) {
	addSeeds(f, 200, seedUIConfig)
	f.Add(200, "application/json", "", []byte(`{"resourceLimits":{"apiTokens":"many"}}`))
	f.Add(200, "application/json", "", []byte(`{"resourceLimits":{"apiTokens":1e400}}`))
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"ResourceLimits": func(ctx context.Context, c *Client) error { _, err := c.ResourceLimits(ctx); return err },
	})
}

// FuzzErrorBodies: the calls whose success has no body to decode (deletes,
// updates, verification), so that only the error path reads the body.
func FuzzErrorBodies(f *testing.F) {
	addSeeds(f, 200, `{}`)
	fuzzCalls(f, map[string]func(context.Context, *Client) error{
		"DeleteAPIToken": func(ctx context.Context, c *Client) error { return c.DeleteAPIToken(ctx, secret.New(seedSecret)) },
		"DeleteProjectAPIToken": func(ctx context.Context, c *Client) error {
			return c.DeleteProjectAPIToken(ctx, "default", secret.New(seedSecret))
		},
		"UpdateAPITokenExpiry": func(ctx context.Context, c *Client) error {
			return c.UpdateAPITokenExpiry(ctx, secret.New(seedSecure), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
		},
		"Verify":    func(ctx context.Context, c *Client) error { return c.Verify(ctx, secret.New(seedSecret), ClientAPI) },
		"DeletePAT": func(ctx context.Context, c *Client) error { return c.DeletePAT(ctx, CurrentUser(), 7) },
	})
}
