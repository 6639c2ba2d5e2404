// Package deploytest tests what the project ships for Kubernetes: the
// kustomize bases and overlays in deploy/kubernetes and the Helm chart in
// charts/unleash-rotator. It has no code of its own, only tests:
//
//   - the chart and the kustomizations render the same objects for the same
//     settings, and neither renders a credential Secret;
//   - the rendered pod specs let the rotator's user (uid 65532) read its
//     mounted credentials, checked by laying the files out as the kubelet
//     does and reading them with that user's credentials;
//   - the rendered configuration passes `rotator check --offline`;
//   - the ServiceMonitor and PrometheusRule decode into the Prometheus
//     Operator's types and their PromQL parses (tools/monitoringcheck, a
//     nested module, so that Prometheus stays out of the main go.mod).
//
// Rendering uses the pinned helm and kustomize of scripts/tools.sh, which
// `make test-deps` installs into the cache.
package deploytest
