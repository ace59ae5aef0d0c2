package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Query is one PromQL expression of one dashboard panel.
type Query struct {
	Dashboard string // dashboard title
	Panel     string // panel title
	RefID     string
	Expr      string
}

// panelJSON is the part of a dashboard panel the queries live in; rows may nest panels.
type panelJSON struct {
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *struct {
			Type string `json:"type"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panelJSON `json:"panels"`
}

// PrometheusQueries lists the PromQL expression of every Prometheus target in a dashboard's JSON,
// panels inside rows included. A Prometheus target without an expression is an error.
func PrometheusQueries(dashboardJSON []byte) ([]Query, error) {
	var d struct {
		Title  string      `json:"title"`
		Panels []panelJSON `json:"panels"`
	}
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	var out []Query
	var walk func([]panelJSON) error
	walk = func(panels []panelJSON) error {
		for _, p := range panels {
			for _, t := range p.Targets {
				typ := ""
				if p.Datasource != nil {
					typ = p.Datasource.Type
				}
				if t.Datasource != nil && t.Datasource.Type != "" {
					typ = t.Datasource.Type
				}
				if typ != "prometheus" {
					continue
				}
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("dashboard %q panel %q target %s: empty PromQL expression", d.Title, p.Title, t.RefID)
				}
				out = append(out, Query{Dashboard: d.Title, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

// variableRef matches Grafana's variable syntaxes: $name, ${name} and ${name:format}.
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)`)

// Variables lists the variable names an expression refers to, built-ins ($__…) included, in order of
// first use.
func Variables(expr string) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range variableRef.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2]
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// Expand substitutes variables in an expression, as Grafana would before sending it. A variable
// missing from values is an error, so a test cannot pass a query Grafana could not run.
func Expand(expr string, values map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("expand %q: no value for variable(s) %s", expr, strings.Join(missing, ", "))
	}
	return out, nil
}

// LabelValuesVariable is a dashboard variable filled by Grafana's label_values(metric, label).
type LabelValuesVariable struct {
	Name, Metric, Label string
}

var labelValuesCall = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// LabelValuesVariables lists a dashboard's variables whose query is label_values(metric, label); a
// query variable of another form is an error, since nothing could check it.
func LabelValuesVariables(dashboardJSON []byte) ([]LabelValuesVariable, error) {
	var d struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	var out []LabelValuesVariable
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValuesCall.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %v is not label_values(metric, label)", v.Name, v.Query)
		}
		out = append(out, LabelValuesVariable{Name: v.Name, Metric: m[1], Label: m[2]})
	}
	return out, nil
}

// grafanaRegexChars are the characters Grafana's regex format escapes (kbn.regexEscape).
var grafanaRegexChars = regexp.MustCompile(`[\\^$*+?.()|\[\]{}/]`)

// GrafanaRegexFormat is Grafana's ${var:regex} formatting of a variable's selected values: each value with
// the characters \ ^ $ * + ? . ( ) | [ ] { } / escaped by a backslash, several values as (a|b).
func GrafanaRegexFormat(values []string) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = grafanaRegexChars.ReplaceAllString(v, `\$0`)
	}
	if len(out) == 1 {
		return out[0]
	}
	return "(" + strings.Join(out, "|") + ")"
}
