package kube

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Client reads and writes the few kinds of object the rotator's adapters
// use: Secrets, Leases, Deployments, StatefulSets and
// SelfSubjectAccessReviews. Its methods mirror client-go's generated
// clientset for those kinds (without options, which the adapters never
// set), and return the same errors (test them with
// k8s.io/apimachinery/pkg/api/errors).
//
// It is not client-go's clientset because that registers every API group
// of Kubernetes when the process starts: measured on the rotator, the
// clientset and its leader election added 36 MB to the binary and 18 MB to
// the memory of every run, Kubernetes configured or not. Client registers
// four groups, on client-go's REST client (the same transport, retries and
// error decoding).
type Client struct {
	core, apps, coordination, authorization rest.Interface
}

// scheme knows the kinds Client reads and writes, and nothing else.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, coordinationv1.AddToScheme, authorizationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // static registrations: cannot fail
		}
	}
	return s
}()

// Client returns a client for the connection.
func (c *Connection) Client() (*Client, error) {
	cl, err := NewClient(c.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client (%s): %w", c.Source, err)
	}
	return cl, nil
}

// NewClient returns a client for cfg. Its groups share one HTTP client, so
// one connection pool.
func NewClient(cfg *rest.Config) (*Client, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	group := func(gv schema.GroupVersion) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = "/apis"
		if gv.Group == "" {
			c.APIPath = "/api"
		}
		c.NegotiatedSerializer = codecs
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	var cl Client
	for _, g := range []struct {
		gv  schema.GroupVersion
		set *rest.Interface
	}{
		{corev1.SchemeGroupVersion, &cl.core},
		{appsv1.SchemeGroupVersion, &cl.apps},
		{coordinationv1.SchemeGroupVersion, &cl.coordination},
		{authorizationv1.SchemeGroupVersion, &cl.authorization},
	} {
		rc, err := group(g.gv)
		if err != nil {
			return nil, err
		}
		*g.set = rc
	}
	return &cl, nil
}

// Secrets returns the Secrets of namespace ns.
func (c *Client) Secrets(ns string) Objects[corev1.Secret, *corev1.Secret] {
	return Objects[corev1.Secret, *corev1.Secret]{c.core, ns, "secrets"}
}

// Leases returns the Leases of namespace ns.
func (c *Client) Leases(ns string) Objects[coordinationv1.Lease, *coordinationv1.Lease] {
	return Objects[coordinationv1.Lease, *coordinationv1.Lease]{c.coordination, ns, "leases"}
}

// Deployments returns the Deployments of namespace ns.
func (c *Client) Deployments(ns string) Objects[appsv1.Deployment, *appsv1.Deployment] {
	return Objects[appsv1.Deployment, *appsv1.Deployment]{c.apps, ns, "deployments"}
}

// StatefulSets returns the StatefulSets of namespace ns.
func (c *Client) StatefulSets(ns string) Objects[appsv1.StatefulSet, *appsv1.StatefulSet] {
	return Objects[appsv1.StatefulSet, *appsv1.StatefulSet]{c.apps, ns, "statefulsets"}
}

// SelfSubjectAccessReviews returns the (cluster-wide, create-only)
// SelfSubjectAccessReviews: what the client's own identity may do.
func (c *Client) SelfSubjectAccessReviews() Objects[authorizationv1.SelfSubjectAccessReview, *authorizationv1.SelfSubjectAccessReview] {
	return Objects[authorizationv1.SelfSubjectAccessReview, *authorizationv1.SelfSubjectAccessReview]{c.authorization, "", "selfsubjectaccessreviews"}
}

// Objects are the objects of one resource in one namespace ("" for a
// cluster-wide resource). E is the object's type, P a pointer to it.
type Objects[E any, P interface {
	*E
	runtime.Object
}] struct {
	client   rest.Interface
	ns       string
	resource string
}

// Get reads the object called name.
func (o Objects[E, P]) Get(ctx context.Context, name string) (P, error) {
	return o.do(ctx, o.client.Get().Name(name))
}

// Create creates obj and returns it as the API server stored it.
func (o Objects[E, P]) Create(ctx context.Context, obj P) (P, error) {
	return o.do(ctx, o.client.Post().Body(obj))
}

// Update replaces obj, provided its resourceVersion is still current (else
// a Conflict error), and returns it as the API server stored it.
func (o Objects[E, P]) Update(ctx context.Context, obj P) (P, error) {
	meta, ok := any(obj).(interface{ GetName() string })
	if !ok {
		return nil, fmt.Errorf("update %s: the object has no name", o.resource)
	}
	return o.do(ctx, o.client.Put().Name(meta.GetName()).Body(obj))
}

// Patch applies data, a patch of type pt, to the object called name.
func (o Objects[E, P]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte) (P, error) {
	return o.do(ctx, o.client.Patch(pt).Name(name).Body(data))
}

func (o Objects[E, P]) do(ctx context.Context, r *rest.Request) (P, error) {
	if o.ns != "" { // client-go refuses to create with an empty namespace set
		r = r.Namespace(o.ns)
	}
	out := P(new(E))
	if err := r.Resource(o.resource).Do(ctx).Into(out); err != nil {
		return nil, err
	}
	return out, nil
}
