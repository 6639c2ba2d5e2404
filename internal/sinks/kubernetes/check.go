package kubernetes

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Check verifies, without changing anything, that the sink may read and
// write dest: it asks the API server (SelfSubjectAccessReview, which every
// authenticated user may do) whether the rotator may get and update the
// Secret, create it if it does not exist yet, and patch the workloads it
// restarts; and it refuses an immutable or non-Opaque Secret. The error
// lists everything missing.
func (s *Sink) Check(ctx context.Context, dest string) error {
	r, err := s.resolve(dest)
	if err != nil {
		return err
	}
	type need struct {
		attrs authorizationv1.ResourceAttributes
		what  string
	}
	secret := func(verb, name string) need {
		return need{
			attrs: authorizationv1.ResourceAttributes{Namespace: r.ns, Verb: verb, Resource: "secrets", Name: name},
			what:  fmt.Sprintf("%q on secrets%s in namespace %s", verb, namesHint(name), r.ns),
		}
	}
	needs := []need{secret("get", r.name), secret("update", r.name)}
	for _, t := range s.restarts {
		if t.secret == r {
			needs = append(needs, need{
				attrs: authorizationv1.ResourceAttributes{Namespace: t.ns, Verb: "patch", Group: "apps", Resource: t.resource(), Name: t.name},
				what:  fmt.Sprintf("%q on apps/%s%s in namespace %s (to restart %s)", "patch", t.resource(), namesHint(t.name), t.ns, t),
			})
		}
	}
	var missing []string
	for _, n := range needs {
		ok, err := s.allowed(ctx, n.attrs)
		if err != nil {
			return fmt.Errorf("check %s: %w", r, err)
		}
		if !ok {
			missing = append(missing, n.what)
		}
	}

	cur, err := s.client.Secrets(r.ns).Get(ctx, r.name)
	switch {
	case apierrors.IsNotFound(err):
		// Put will create it.
		create := secret("create", "")
		ok, err := s.allowed(ctx, create.attrs)
		if err != nil {
			return fmt.Errorf("check %s: %w", r, err)
		}
		if !ok {
			missing = append(missing, create.what+" (the Secret does not exist yet; or create it beforehand)")
		}
	case apierrors.IsForbidden(err):
		// Reported as a missing "get" above.
	case apierrors.IsUnauthorized(err):
		return explain("check", r, err)
	case err != nil:
		return fmt.Errorf("check %s: %w", r, err)
	default:
		if err := writable(r, cur); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("check %s: the rotator may not %s", r, strings.Join(missing, ", nor "))
	}
	return nil
}

// allowed asks the API server whether the rotator may do attrs.
func (s *Sink) allowed(ctx context.Context, attrs authorizationv1.ResourceAttributes) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}
	got, err := s.client.SelfSubjectAccessReviews().Create(ctx, review)
	switch {
	case apierrors.IsUnauthorized(err):
		return false, fmt.Errorf("the API server rejected the rotator's credentials (401 Unauthorized): " +
			"the service-account token or the kubeconfig's credentials are invalid or expired")
	case err != nil:
		return false, fmt.Errorf("self subject access review: %w", err)
	}
	return got.Status.Allowed, nil
}

// namesHint formats a resource name for a permission message.
func namesHint(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (resourceNames: [%q])", name)
}
