// Package deploytest tests what the project ships for Kubernetes: the
// kustomize bases and overlays in deploy/kubernetes and the Helm chart in
// charts/unleash-rotator. It has no code of its own, only tests:
//
//   - the chart and the kustomizations render the same objects for the same
//     settings, and neither renders a credential Secret; the chart lints
//     strictly and refuses bad values clearly;
//   - the rendered pod specs keep their hardening, and let the rotator's
//     user (uid 65532) read its mounted credentials, checked by laying the
//     files out as the kubelet does and reading them with that user's
//     credentials;
//   - every rendered object applies to a real kube-apiserver
//     (internal/kubetest) with server-side apply and strict field
//     validation, and the rendered RBAC allows what the rotator does and
//     forbids the rest, checked with the service account's own token;
//   - the ServiceMonitor and PrometheusRule, which that server cannot take
//     without the Prometheus Operator's CRDs, decode into the operator's
//     types and pass promtool's rule checks, and their alerts select only
//     metrics the rotator exports (tools/monitoringcheck, a nested module,
//     so that Prometheus stays out of the main go.mod);
//   - the rendered configuration passes `rotator check --offline`.
//
// Rendering uses the pinned helm and kustomize of scripts/tools.sh, which
// `make test-deps` installs into the cache.
package deploytest
