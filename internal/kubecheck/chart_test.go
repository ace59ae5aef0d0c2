//go:build kubernetes

package kubecheck

// The Helm chart against the real tools (make test-kubernetes installs them): helm lint, helm template with every
// ci/*-values.yaml, and every rendered object applied with server-side dry-run, strict field validation and the
// restricted Pod Security level to a real kube-apiserver and etcd started here on loopback.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tokentrace/tokentrace/internal/testproc"
)

const (
	chartDir    = "../../deploy/helm/tokentrace"
	namespace   = "tokentrace-test"
	kubeVersion = "1.37.2"
)

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `make test-kubernetes`", name)
	}
	return v
}

func helm(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// helm keeps caches and config under HOME; a test's go into its temporary folder.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func valueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("value files in %s/ci: %v (%d found)", chartDir, err, len(files))
	}
	sort.Strings(files)
	return files
}

func TestChartAgainstAPIServer(t *testing.T) {
	helmBin := env(t, "TOKENTRACE_HELM_BIN")
	rendered := map[string][]byte{}
	for _, f := range valueFiles(t) {
		helm(t, helmBin, "lint", "--strict", "--kube-version", kubeVersion, chartDir, "-f", f)
		rendered[filepath.Base(f)] = helm(t, helmBin, "template", "tt", chartDir, "--namespace", namespace,
			"--kube-version", kubeVersion, "-f", f)
	}

	start := time.Now()
	var log testproc.Buffer
	cluster, err := Start(context.Background(), ClusterConfig{
		EtcdBin: env(t, "TOKENTRACE_ETCD_BIN"), APIServerBin: env(t, "TOKENTRACE_KUBE_APISERVER_BIN"),
		Dir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatalf("start etcd and kube-apiserver: %v\n%s", err, tail(log.String()))
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("etcd and kube-apiserver ready in %v", time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	a, err := NewApplier(cluster.REST)
	if err != nil {
		t.Fatal(err)
	}
	// Pod Security's restricted level: enforced on pods, and warned about for every pod template (Deployment,
	// Job) — a warning fails the test below.
	if err := a.Namespace(ctx, namespace, map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
		"pod-security.kubernetes.io/audit": "restricted"}); err != nil {
		t.Fatal(err)
	}
	crds := crdsFromEnv(t)
	if err := a.InstallCRDs(ctx, crds); err != nil {
		t.Fatalf("install the operators' CRDs: %v", err)
	}

	start = time.Now()
	kinds := map[string]int{}
	for name, manifests := range rendered {
		objs, err := Decode(manifests)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, obj := range objs {
			o := a.Apply(ctx, obj, namespace, true)
			kinds[o.Kind]++
			if o.Err != nil {
				t.Errorf("%s: %s rejected: %v", name, o, o.Err)
			}
			for _, w := range o.Warnings {
				t.Errorf("%s: %s: API server warning: %s", name, o, w)
			}
		}
	}
	t.Logf("dry-run of %d rendered objects in %v: %v", sum(kinds), time.Since(start).Round(time.Millisecond), kinds)
	for _, k := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
		"ConfigMap", "Job", "PersistentVolumeClaim", "ServiceMonitor", "PodMonitor", "OpenTelemetryCollector", "Role"} {
		if kinds[k] == 0 {
			t.Errorf("no value file renders a %s: the dry-run proves nothing about it", k)
		}
	}

	// The same checks reject what they should, or the above proves nothing.
	bad := map[string]string{
		"unknown field": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{},"dat":{}}`,
		"invalid value": `{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"x"},"spec":{"maxUnavailable":-1,"selector":{"matchLabels":{"a":"b"}}}}`,
	}
	for what, doc := range bad {
		objs, err := Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if o := a.Apply(ctx, objs[0], namespace, true); o.Err == nil {
			t.Errorf("an object with an %s was accepted", what)
		}
	}
	// No securityContext at all: root allowed, privilege escalation allowed, capabilities kept, no seccomp.
	unhardened := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"root"},"spec":{"selector":{"matchLabels":{"a":"b"}},
		"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`
	objs, _ := Decode([]byte(unhardened))
	if o := a.Apply(ctx, objs[0], namespace, true); len(o.Warnings) == 0 || !strings.Contains(strings.Join(o.Warnings, " "), "PodSecurity") {
		t.Errorf("a Deployment without securityContext drew no Pod Security warning (err %v, warnings %q)", o.Err, o.Warnings)
	}
}

// crdsFromEnv reads the Prometheus Operator's and the OpenTelemetry Operator's CRDs that the chart's optional
// kinds need, from the module folders make test-kubernetes downloads.
func crdsFromEnv(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, f := range []string{
		filepath.Join(env(t, "TOKENTRACE_PROMETHEUS_OPERATOR_DIR"), "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"),
		filepath.Join(env(t, "TOKENTRACE_PROMETHEUS_OPERATOR_DIR"), "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"),
		filepath.Join(env(t, "TOKENTRACE_OTEL_OPERATOR_DIR"), "config/crd/bases/opentelemetry.io_opentelemetrycollectors.yaml"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read CRD: %v", err)
		}
		objs, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, objs...)
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// The chart fails to render, with a message naming the value, where a rollout would cut streams or the load
// test could not start.
func TestChartRefusesBadValues(t *testing.T) {
	helmBin := env(t, "TOKENTRACE_HELM_BIN")
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"proxy.terminationGracePeriodSeconds=20"}, "proxy.terminationGracePeriodSeconds"},
		{[]string{"collector.enabled=true"}, "collector.tracesEndpoint"},
		{[]string{"collector.enabled=true", "collector.mode=sidecar", "collector.tracesEndpoint=a:1", "collector.remoteWriteURL=http://b"}, "collector.mode"},
		{[]string{"loadtest.enabled=true", "loadtest.pods=10", "loadtest.concurrency=4"}, "loadtest.concurrency"},
		{[]string{"proxy.upstreams=null"}, "proxy.upstreams"},
		{[]string{"metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true"}, "not both"},
	} {
		args := []string{"template", "tt", chartDir, "--kube-version", kubeVersion}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		cmd := exec.Command(helmBin, args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("helm template --set %v: err %v, output does not name %q:\n%s", tc.set, err, tc.want, tail(string(out)))
		}
	}
}

// The chart's collector bounds and derives its metrics as the shipped one
// does: the connectors (span metrics with their cardinality limit and
// expiry, the service graph) and the pipelines are otel-collector/config.yaml's.
func TestChartCollectorMatchesTheShippedConfig(t *testing.T) {
	helmBin := env(t, "TOKENTRACE_HELM_BIN")
	out := helm(t, helmBin, "template", "tt", chartDir, "--namespace", namespace, "--kube-version", kubeVersion,
		"-f", filepath.Join(chartDir, "ci", "collector-values.yaml"))
	var chart map[string]any
	for _, doc := range strings.Split(string(out), "\n---") {
		var obj struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind == "ConfigMap" && obj.Data["config.yaml"] != "" {
			if err := yaml.Unmarshal([]byte(obj.Data["config.yaml"]), &chart); err != nil {
				t.Fatal(err)
			}
		}
	}
	if chart == nil {
		t.Fatal("no collector ConfigMap in the chart rendered with ci/collector-values.yaml")
	}
	b, err := os.ReadFile("../../otel-collector/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var shipped map[string]any
	if err := yaml.Unmarshal(b, &shipped); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(chart["connectors"], shipped["connectors"]) {
		t.Errorf("the chart's connectors differ from otel-collector/config.yaml's:\nchart   %v\nshipped %v", chart["connectors"], shipped["connectors"])
	}
	pipelines := func(c map[string]any) any { return c["service"].(map[string]any)["pipelines"] }
	if !reflect.DeepEqual(pipelines(chart), pipelines(shipped)) {
		t.Errorf("the chart's pipelines differ:\nchart   %v\nshipped %v", pipelines(chart), pipelines(shipped))
	}
}

// TestChartProxyHasAGoMemoryLimit holds the proxy's Go runtime to the container's memory limit (GOMEMLIMIT from
// limits.memory), unless extraEnv sets GOMEMLIMIT itself, which then appears once.
func TestChartProxyHasAGoMemoryLimit(t *testing.T) {
	helmBin := env(t, "TOKENTRACE_HELM_BIN")
	type envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			ResourceFieldRef struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	memLimits := func(args ...string) []envVar {
		out := helm(t, helmBin, append([]string{"template", "tt", chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
		var found []envVar
		for _, doc := range strings.Split(string(out), "\n---") {
			var obj struct {
				Kind string `yaml:"kind"`
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name string   `yaml:"name"`
								Env  []envVar `yaml:"env"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatal(err)
			}
			for _, c := range obj.Spec.Template.Spec.Containers {
				if obj.Kind != "Deployment" || c.Name != "proxy" {
					continue
				}
				for _, e := range c.Env {
					if e.Name == "GOMEMLIMIT" {
						found = append(found, e)
					}
				}
			}
		}
		return found
	}
	if got := memLimits(); len(got) != 1 || got[0].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("the proxy's GOMEMLIMIT with the default values: %+v, want one, from limits.memory", got)
	}
	if got := memLimits("--set", "proxy.extraEnv[0].name=GOMEMLIMIT", "--set", "proxy.extraEnv[0].value=300MiB"); len(got) != 1 || got[0].Value != "300MiB" {
		t.Errorf("the proxy's GOMEMLIMIT with extraEnv setting it: %+v, want only extraEnv's", got)
	}
}
