// Command monitoringcheck checks the Prometheus Operator objects in a stream
// of rendered Kubernetes manifests, for clusters whose API server the tests
// cannot give the operator's CRDs:
//
//   - every ServiceMonitor and PrometheusRule decodes into the operator's Go
//     types (monitoring.coreos.com/v1) with no unknown field;
//   - every rule group passes the checks of `promtool check rules`
//     (rulefmt: the PromQL parses, durations, label names and annotation
//     templates are valid).
//
// Other objects are ignored. It prints a JSON summary on stdout (the objects
// checked, and the metric names each rule's expression selects) and exits 1
// after listing every problem on stderr.
//
//	helm template charts/unleash-rotator --set prometheusRule.enabled=true | monitoringcheck
//
// It is a nested module so that Prometheus and the operator's types stay out
// of the rotator's go.mod.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Summary is what was checked.
type Summary struct {
	ServiceMonitors []string `json:"serviceMonitors"`
	PrometheusRules []string `json:"prometheusRules"`
	Rules           []Rule   `json:"rules"`
}

// Rule is one alerting or recording rule.
type Rule struct {
	Name    string   `json:"name"`
	Metrics []string `json:"metrics"`
}

func main() {
	sum, errs := check(os.Stdin)
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "monitoringcheck:", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(sum); err != nil {
		fmt.Fprintln(os.Stderr, "monitoringcheck:", err)
		os.Exit(1)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

// check reads every YAML document of r and checks the operator's objects.
func check(r io.Reader) (Summary, []error) {
	var (
		sum  Summary
		errs []error
	)
	p := parser.NewParser(parser.Options{})
	dec := yaml.NewDecoder(r)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return sum, errs
		}
		if err != nil {
			return sum, append(errs, fmt.Errorf("decode YAML: %w", err))
		}
		kind, _ := doc["kind"].(string)
		switch kind {
		case monitoringv1.ServiceMonitorsKind:
			var sm monitoringv1.ServiceMonitor
			if err := strict(doc, &sm); err != nil {
				errs = append(errs, fmt.Errorf("ServiceMonitor: %w", err))
				continue
			}
			if len(sm.Spec.Endpoints) == 0 {
				errs = append(errs, fmt.Errorf("ServiceMonitor %s: no endpoints", sm.Name))
			}
			sum.ServiceMonitors = append(sum.ServiceMonitors, sm.Name)
		case monitoringv1.PrometheusRuleKind:
			var pr monitoringv1.PrometheusRule
			if err := strict(doc, &pr); err != nil {
				errs = append(errs, fmt.Errorf("PrometheusRule: %w", err))
				continue
			}
			rules, ruleErrs := checkRules(pr, p)
			errs = append(errs, ruleErrs...)
			sum.Rules = append(sum.Rules, rules...)
			sum.PrometheusRules = append(sum.PrometheusRules, pr.Name)
		}
	}
}

// strict decodes doc into v, refusing fields v does not have, and checks
// the API version.
func strict(doc map[string]any, v any) error {
	if got := doc["apiVersion"]; got != monitoringv1.SchemeGroupVersion.String() {
		return fmt.Errorf("apiVersion %v, want %s", got, monitoringv1.SchemeGroupVersion)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkRules runs promtool's rule checks on the groups of pr, and lists
// the metrics each rule selects.
func checkRules(pr monitoringv1.PrometheusRule, p parser.Parser) ([]Rule, []error) {
	// The operator's types carry JSON names, which are the rule file's: go
	// through JSON to write the groups as the rule file promtool reads.
	content, err := asRuleFile(pr.Spec)
	if err != nil {
		return nil, []error{fmt.Errorf("PrometheusRule %s: %w", pr.Name, err)}
	}
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for i := range errs {
		errs[i] = fmt.Errorf("PrometheusRule %s: %w", pr.Name, errs[i])
	}
	if groups == nil {
		return nil, errs
	}
	var rules []Rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("PrometheusRule %s, rule %s: %w", pr.Name, name, err))
				continue
			}
			rules = append(rules, Rule{Name: name, Metrics: metricNames(expr)})
		}
	}
	return rules, errs
}

// asRuleFile returns spec's groups as a Prometheus rule file.
func asRuleFile(spec monitoringv1.PrometheusRuleSpec) ([]byte, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var file any
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, err
	}
	return yaml.Marshal(file)
}

// metricNames returns the metric names an expression selects, sorted.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names
}
