package kubetest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// grantTimeout bounds the wait for a new RoleBinding to take effect: RBAC
// serves from an informer cache, a few milliseconds behind the write.
const grantTimeout = 10 * time.Second

// AdminClient returns a clientset for [AdminUser].
func (cp *ControlPlane) AdminClient(tb testing.TB) kubernetes.Interface {
	tb.Helper()
	return cp.clientFor(tb, cp.AdminConfig())
}

// UserConfig returns a client configuration for one of [Users].
func (cp *ControlPlane) UserConfig(tb testing.TB, user string) *rest.Config {
	tb.Helper()
	tok, ok := cp.tokens[user]
	if !ok || user == AdminUser {
		tb.Fatalf("kubetest: no restricted user %q: use one of %v", user, Users())
	}
	return cp.ConfigWithToken(tok)
}

// UserClient returns a clientset for one of [Users].
func (cp *ControlPlane) UserClient(tb testing.TB, user string) kubernetes.Interface {
	tb.Helper()
	return cp.clientFor(tb, cp.UserConfig(tb, user))
}

func (cp *ControlPlane) clientFor(tb testing.TB, cfg *rest.Config) kubernetes.Interface {
	tb.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatalf("kubetest: clientset: %v", err)
	}
	return c
}

// Namespace creates a namespace for the test, named after it with a random
// suffix. Nothing deletes it: without a controller manager a deleted
// namespace would stay Terminating anyway, and the control plane is thrown
// away with the test binary.
func (cp *ControlPlane) Namespace(tb testing.TB) string {
	tb.Helper()
	suffix, err := randomHex(3)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	name := dnsLabel(tb.Name(), 63-len(suffix)-1) + "-" + suffix
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cp.AdminClient(tb).CoreV1().Namespaces().Create(context.WithoutCancel(tb.Context()), ns, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("kubetest: create namespace %s: %v", name, err)
	}
	return name
}

// dnsLabel turns s into a DNS label of at most max characters: lower case,
// alphanumerics and '-', starting and ending with an alphanumeric.
func dnsLabel(s string, limit int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > limit {
		out = out[:limit]
	}
	out = strings.Trim(out, "-")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "t" + out
		if len(out) > limit {
			out = strings.TrimRight(out[:limit], "-")
		}
	}
	return out
}

// Grant gives user the rules in namespace ns, through a Role and a
// RoleBinding, and waits until RBAC applies them. user is one of [Users],
// or a service account's [ServiceAccount.Username].
func (cp *ControlPlane) Grant(tb testing.TB, ns, user string, rules ...rbacv1.PolicyRule) {
	tb.Helper()
	if full, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		saNS, name, ok := strings.Cut(full, ":")
		if !ok {
			tb.Fatalf("kubetest: %q is not a service account user name", user)
		}
		cp.bind(tb, ns, "sa-"+name, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: saNS}, user, rules)
		return
	}
	if _, ok := cp.tokens[user]; !ok || user == AdminUser {
		tb.Fatalf("kubetest: no restricted user %q: use one of %v, or a service account", user, Users())
	}
	cp.bind(tb, ns, "user-"+user, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}, user, rules)
}

// ServiceAccount is a service account with a token, as a pod running under
// it would have.
type ServiceAccount struct {
	Namespace, Name string
	// Token is a token minted for it by the TokenRequest API, valid for an
	// hour, for the API server's default audience.
	Token string

	cp *ControlPlane
}

// Username is how the API server names the service account in RBAC and in
// error messages.
func (sa *ServiceAccount) Username() string {
	return "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
}

// Config returns a client configuration that authenticates with sa.Token.
func (sa *ServiceAccount) Config() *rest.Config { return sa.cp.ConfigWithToken(sa.Token) }

// ServiceAccount creates a service account in ns, grants it rules through a
// Role and a RoleBinding (none if rules is empty), waits until RBAC applies
// them, and mints its token with the TokenRequest API.
func (cp *ControlPlane) ServiceAccount(tb testing.TB, ns, name string, rules ...rbacv1.PolicyRule) *ServiceAccount {
	tb.Helper()
	ctx := context.WithoutCancel(tb.Context())
	admin := cp.AdminClient(tb)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("kubetest: create service account %s/%s: %v", ns, name, err)
	}
	out := &ServiceAccount{Namespace: ns, Name: name, cp: cp}
	if len(rules) > 0 {
		subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
		cp.bind(tb, ns, "sa-"+name, subject, out.Username(), rules)
	}
	out.Token = cp.Token(tb, ns, name)
	return out
}

// Token mints a token for service account ns/name with the TokenRequest
// API, valid for an hour, for audiences (the API server's own when none).
func (cp *ControlPlane) Token(tb testing.TB, ns, name string, audiences ...string) string {
	tb.Helper()
	exp := int64(time.Hour / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &exp}}
	got, err := cp.AdminClient(tb).CoreV1().ServiceAccounts(ns).CreateToken(context.WithoutCancel(tb.Context()), name, req, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("kubetest: token for service account %s/%s: %v", ns, name, err)
	}
	return got.Status.Token
}

// GrantCluster gives the service account sa a cluster role (such as
// "system:auth-delegator") through a ClusterRoleBinding, and waits until
// RBAC applies it. check is a permission the role grants, to wait for.
func (cp *ControlPlane) GrantCluster(tb testing.TB, sa *ServiceAccount, clusterRole string, check authorizationv1.ResourceAttributes) {
	tb.Helper()
	ctx := context.WithoutCancel(tb.Context())
	name := "kubetest-" + sa.Namespace + "-" + sa.Name + "-" + clusterRole
	name = strings.ReplaceAll(name, ":", "-")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}},
	}
	if _, err := cp.AdminClient(tb).RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("kubetest: create cluster role binding %s: %v", name, err)
	}
	cp.waitAllowed(tb, sa.Username(), check)
}

// bind creates a Role with rules and binds it to subject, then waits until
// the first resource rule is in effect for user (the subject's user name).
func (cp *ControlPlane) bind(tb testing.TB, ns, name string, subject rbacv1.Subject, user string, rules []rbacv1.PolicyRule) {
	tb.Helper()
	ctx := context.WithoutCancel(tb.Context())
	admin := cp.AdminClient(tb)
	suffix, err := randomHex(3)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	name = dnsLabel(name, 50) + "-" + suffix
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("kubetest: create role %s/%s: %v", ns, name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("kubetest: create role binding %s/%s: %v", ns, name, err)
	}
	for _, r := range rules {
		if len(r.Verbs) == 0 || len(r.Resources) == 0 {
			continue
		}
		attrs := authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Resource: r.Resources[0]}
		if len(r.APIGroups) > 0 {
			attrs.Group = r.APIGroups[0]
		}
		if len(r.ResourceNames) > 0 {
			attrs.Name = r.ResourceNames[0]
		}
		cp.waitAllowed(tb, user, attrs)
		break
	}
}

// waitAllowed waits until RBAC allows user attrs, as a new binding takes a
// few milliseconds to reach the authorizer's cache.
func (cp *ControlPlane) waitAllowed(tb testing.TB, user string, attrs authorizationv1.ResourceAttributes) {
	tb.Helper()
	admin := cp.AdminClient(tb)
	groups := []string{"system:authenticated"}
	if strings.HasPrefix(user, "system:serviceaccount:") {
		ns := strings.Split(user, ":")[2]
		groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+ns)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tb.Context()), grantTimeout)
	defer cancel()
	var reason string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups, ResourceAttributes: &attrs,
		}}
		got, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		reason = got.Status.Reason
		return got.Status.Allowed, nil
	})
	if err != nil {
		tb.Fatalf("kubetest: RBAC does not allow %s to %s %s/%s %q in %q after %s (%s): %v",
			user, attrs.Verb, attrs.Group, attrs.Resource, attrs.Name, attrs.Namespace, grantTimeout, reason, err)
	}
}

// WriteKubeconfig writes a kubeconfig file for cfg (a configuration from
// this package: server, CA and bearer token) into a temporary directory of
// the test, with one context, "kubetest", whose namespace is namespace (none
// if ""), and returns its path.
func (cp *ControlPlane) WriteKubeconfig(tb testing.TB, cfg *rest.Config, namespace string) string {
	tb.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: namespace}
	kc.CurrentContext = "kubetest"
	p := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		tb.Fatalf("kubetest: write kubeconfig: %v", err)
	}
	return p
}

// Rules is shorthand for one RBAC rule: verbs on resources of group ("" for
// the core group), limited to names if any are given.
func Rules(group string, resources, verbs []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: verbs, ResourceNames: names}
}

// String describes the control plane for logs.
func (cp *ControlPlane) String() string {
	return fmt.Sprintf("kube-apiserver v%s at %s", Version, cp.URL)
}
