package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// RestartAnnotation is the pod template annotation the sink sets on a
// [Restart] workload after writing its Secret: "<namespace>/<secret>@<token
// fingerprint>". A new value changes the pod template, so the controller
// rolls the pods; writing the same token again changes nothing.
const RestartAnnotation = Prefix + "restarted-for"

// restartTarget is a [Restart] with its namespaces resolved.
type restartTarget struct {
	kind, ns, name string
	secret         ref
}

func (t restartTarget) String() string { return strings.ToLower(t.kind) + " " + t.ns + "/" + t.name }

// resource is the workload's API resource, for requests and RBAC hints.
func (t restartTarget) resource() string {
	if t.kind == KindStatefulSet {
		return "statefulsets"
	}
	return "deployments"
}

// resolveRestart fills in the namespaces of a valid Restart: the Secret's is
// the workload's, else the sink's; the workload's is the Secret's.
func resolveRestart(r Restart, sinkNS string) restartTarget {
	secretNS, secretName, _ := splitDest(r.Secret) // valid: Validate checked it
	if secretNS == "" {
		secretNS = r.Namespace
	}
	if secretNS == "" {
		secretNS = sinkNS
	}
	ns := r.Namespace
	if ns == "" {
		ns = secretNS
	}
	return restartTarget{kind: r.Kind, ns: ns, name: r.Name, secret: ref{ns: secretNS, name: secretName}}
}

// restart patches the pod template of every workload restarted by Secret r,
// now holding a token of fingerprint fp. It tries them all and returns
// every failure.
func (s *Sink) restart(ctx context.Context, r ref, fp string) error {
	var errs []error
	for _, t := range s.restarts {
		if t.secret != r {
			continue
		}
		if err := s.patchTemplate(ctx, t, r.String()+"@"+fp); err != nil {
			errs = append(errs, err)
			continue
		}
		s.logger.Info("restarting workload after its secret changed", "workload", t.String(), "secret", r.String(), "fingerprint", fp)
	}
	return errors.Join(errs...)
}

// patchTemplate sets [RestartAnnotation] on t's pod template.
func (s *Sink) patchTemplate(ctx context.Context, t restartTarget, value string) error {
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{RestartAnnotation: value},
		}}},
	})
	if err != nil {
		return err
	}
	if t.kind == KindStatefulSet {
		_, err = s.client.StatefulSets(t.ns).Patch(ctx, t.name, types.MergePatchType, patch)
	} else {
		_, err = s.client.Deployments(t.ns).Patch(ctx, t.name, types.MergePatchType, patch)
	}
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("restart %s: %w: a Role in namespace %s needs verbs [\"patch\"] on resource %q in API group \"apps\" with resourceNames: [%q]",
			t, err, t.ns, t.resource(), t.name)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("restart %s: not found: fix sinks[].kubernetes.restart", t)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("restart %s: the API server rejected the rotator's credentials (401 Unauthorized)", t)
	}
	return fmt.Errorf("restart %s: %w", t, err)
}
