// Package unleash is a typed client for the parts of the Unleash admin API
// that manage credentials: project and instance-wide API tokens, personal
// access tokens (for users and service accounts), Unleash Edge tokens, and
// probes that tell whether a secret authenticates.
//
// # Usage
//
//	c, err := unleash.NewClient("https://unleash.example.com/", secret.New(adminToken))
//	tokens, err := c.ListAPITokens(ctx)
//
// Every method takes a context first and returns a typed error (see below).
// The client is safe for concurrent use.
//
// # What the client normalises
//
// Unleash is inconsistent in a few places, and the client hides that:
//
//   - A token created as "backend" is listed as "client". Both are returned as
//     [TypeBackend].
//   - A project listing made with an admin API token returns every token of the
//     instance. [Client.ListProjectAPITokens] keeps only the tokens whose
//     projects include the project.
//   - In secure-token mode a listing's "secret" field holds only a selector.
//     Such tokens have an empty [APIToken.Secret]; [APIToken.Ref] returns what
//     the update and delete routes need either way.
//
// # Errors
//
// A non-2xx response is an [*APIError] carrying the status and Unleash's
// id/name/message/details. Test for classes of failure with [errors.Is] and
// the sentinels ([ErrNotFound], [ErrUnauthorized], [ErrForbidden],
// [ErrConflict], [ErrLimitExceeded], [ErrTooLarge],
// [ErrUnsupportedMediaType], [ErrRateLimited], [ErrBadRequest]). Failures
// below HTTP are a [*TransportError]. A failed create whose outcome is unknown
// (the request may have reached the server) also matches
// [ErrOutcomeUnknown]: look the token up by name before creating it again.
//
// # Secrets
//
// Secrets are [secret.Secret] values and never appear in errors: the update
// and delete routes carry a token in their path, so errors show the path with
// "{token}" in its place. A successful response that is not JSON is never
// quoted (a listing may hold other tokens' secrets); an error body is
// quoted only after [secret.Scrub] removed every secret the request
// carried and anything shaped like an Unleash secret.
//
// # Retries
//
// Reads, idempotent updates and deletes are retried with exponential backoff
// and full jitter on transport errors, 429 (honouring Retry-After) and 5xx.
// Creates are retried only when the server cannot have processed them: a
// connection that was never established, or a 429.
package unleash
