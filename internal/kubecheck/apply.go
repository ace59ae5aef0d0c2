package kubecheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the manager name of every apply.
const FieldManager = "tokentrace-kubecheck"

// Outcome is what the API server said about one object.
type Outcome struct {
	Kind, Namespace, Name string
	// Warnings are the API server's warnings (deprecated APIs, Pod Security "would violate", unknown fields it
	// dropped when validation is not strict).
	Warnings []string
	// Err is the rejection, nil when the object was accepted.
	Err error
}

func (o Outcome) String() string { return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name) }

// Applier applies objects to one API server.
type Applier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	warn   *warnings
}

// warnings collects the Warning headers of responses; Applier sends one request at a time.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, text)
	w.mu.Unlock()
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

// NewApplier makes an Applier from a client configuration (not modified).
func NewApplier(cfg *rest.Config) (*Applier, error) {
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make the discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make the dynamic client: %w", err)
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warn: w}, nil
}

// Decode splits a multi-document YAML stream (helm template's output) into objects; empty documents are skipped.
func Decode(manifests []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for n := 1; ; n++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode manifest document %d: %w", n, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("manifest document %d has no kind or apiVersion", n)
		}
		objs = append(objs, u)
	}
}

// Apply sends obj as a server-side apply. With dryRun the API server runs every stage (defaulting, validation,
// admission) but stores nothing. Validation is Strict: an unknown or duplicate field is a rejection, not a
// warning. An object without a namespace of a namespaced kind goes to namespace.
func (a *Applier) Apply(ctx context.Context, obj *unstructured.Unstructured, namespace string, dryRun bool) Outcome {
	out := Outcome{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		out.Err = fmt.Errorf("find the resource of %s: %w", gvk, err)
		return out
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if out.Namespace == "" {
			out.Namespace = namespace
		}
		ri = a.dyn.Resource(m.Resource).Namespace(out.Namespace)
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		out.Err = fmt.Errorf("encode %s: %w", out, err)
		return out
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	a.warn.take()
	_, out.Err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
	out.Warnings = a.warn.take()
	return out
}

// Namespace creates a namespace for real, with labels (e.g. Pod Security's enforce level).
func (a *Applier) Namespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(labels)
	if o := a.Apply(ctx, ns, "", false); o.Err != nil {
		return fmt.Errorf("create namespace %s: %w", name, o.Err)
	}
	return nil
}

// InstallCRDs creates CustomResourceDefinitions for real and waits until each is Established and its kind is
// served, so that objects of those kinds can then be applied.
func (a *Applier) InstallCRDs(ctx context.Context, crds []*unstructured.Unstructured) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, crd := range crds {
		if o := a.Apply(ctx, crd, "", false); o.Err != nil {
			return fmt.Errorf("install %s: %w", o, o.Err)
		}
		err := poll(ctx, func() error {
			got, err := a.dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" && cm["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("CRD %s is not Established yet", crd.GetName())
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", crd.GetName(), err)
		}
	}
	a.mapper.Reset()
	// Discovery can lag the Established condition by a moment.
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		err := poll(ctx, func() error {
			if _, err := a.mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind}); err != nil {
				a.mapper.Reset()
				return err
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wait for kind %s.%s to be served: %w", kind, group, err)
		}
	}
	return nil
}

// IsNotFound reports whether err says a kind is not served (e.g. a CRD that is not installed).
func IsNotFound(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsNotFound(err)
}
