// Package kubecheck runs a real etcd and kube-apiserver on loopback, with no kubelet, scheduler or controllers,
// and applies rendered manifests to it with server-side dry-run: the API server's schemas, defaulting, validation
// and admission (Pod Security included) judge every object, and nothing is stored. `make test` uses it to prove the
// Helm chart in deploy/helm/tokentrace (see docs/kubernetes.md).
package kubecheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tokentrace/tokentrace/internal/freeport"
)

// ClusterConfig says which programs to run and where their state goes.
type ClusterConfig struct {
	// EtcdBin and APIServerBin are the etcd and kube-apiserver executables.
	EtcdBin, APIServerBin string
	// Dir holds etcd's data, the certificates and the kubeconfig; it must exist and be empty enough to write
	// into. The caller removes it.
	Dir string
	// Log receives both programs' output; discarded when nil.
	Log io.Writer
	// StartTimeout bounds the wait for etcd and then the API server to be ready (default 3 minutes: the API
	// server installs every built-in API and its bootstrap policy before /readyz passes).
	StartTimeout time.Duration
}

// Validate names the first unusable field.
func (c ClusterConfig) Validate() error {
	for _, f := range []struct{ name, path string }{{"EtcdBin", c.EtcdBin}, {"APIServerBin", c.APIServerBin}} {
		if f.path == "" {
			return fmt.Errorf("cluster config: %s is empty", f.name)
		}
		if st, err := os.Stat(f.path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("cluster config: %s %q is not an executable file", f.name, f.path)
		}
	}
	if st, err := os.Stat(c.Dir); err != nil || !st.IsDir() {
		return fmt.Errorf("cluster config: Dir %q is not a directory", c.Dir)
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("cluster config: StartTimeout %v is negative", c.StartTimeout)
	}
	return nil
}

// Cluster is a running etcd and kube-apiserver. Stop ends both.
type Cluster struct {
	// REST is a client configuration with the system:masters certificate.
	REST *rest.Config
	// Kubeconfig is a file with the same credentials, for kubectl or helm.
	Kubeconfig string
	// URL is the API server's https address on 127.0.0.1.
	URL string

	procs []*exec.Cmd
}

// Start runs etcd, then kube-apiserver against it, and returns when the API server's /readyz passes. On error
// everything started is stopped.
func Start(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 3 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			_ = c.Stop()
		}
	}()
	pk, err := writePKI(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("make the test cluster's certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.run(cfg, cfg.EtcdBin,
		"--name=test", "--data-dir="+filepath.Join(cfg.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL,
		// A test's etcd: losing data on a crash does not matter, and fsync on a loaded disk is most of its latency.
		"--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := poll(sctx, func() error { return httpOK(http.DefaultClient, etcdURL+"/health") }); err != nil {
		return nil, fmt.Errorf("wait for etcd at %s: %w", etcdURL, err)
	}

	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := c.run(cfg, cfg.APIServerBin,
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]), "--cert-dir="+filepath.Join(cfg.Dir, "apiserver-certs"),
		"--tls-cert-file="+pk.serverCert, "--tls-private-key-file="+pk.serverKey, "--client-ca-file="+pk.caFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pk.saPub, "--service-account-signing-key-file="+pk.saKey,
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
		// Nothing runs pods here: no kubelet to reach, no endpoint reconciler to wait for.
		"--endpoint-reconciler-type=none", "--profiling=false", "--v=0"); err != nil {
		return nil, err
	}
	c.REST = &rest.Config{Host: c.URL, TLSClientConfig: rest.TLSClientConfig{
		CAFile: pk.caFile, CertFile: pk.clientCert, KeyFile: pk.clientKey}, QPS: 50, Burst: 100, Timeout: 30 * time.Second}
	hc, err := rest.HTTPClientFor(c.REST)
	if err != nil {
		return nil, fmt.Errorf("make the API server client: %w", err)
	}
	if err := poll(sctx, func() error { return httpOK(hc, c.URL+"/readyz") }); err != nil {
		return nil, fmt.Errorf("wait for kube-apiserver at %s: %w", c.URL, err)
	}
	c.Kubeconfig = filepath.Join(cfg.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.URL, pk); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// run starts one program in its own process group, its output to cfg.Log.
func (c *Cluster) run(cfg ClusterConfig, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// Stop ends the API server, then etcd: SIGTERM, and SIGKILL to the process group after 15 seconds. It waits
// for both to exit and may be called more than once.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		cmd := c.procs[i]
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			errs = append(errs, fmt.Errorf("%s did not stop within 15 s of SIGTERM; killed", filepath.Base(cmd.Path)))
		}
	}
	c.procs = nil
	return errors.Join(errs...)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		port, err := freeport.Port()
		if err != nil {
			return nil, err
		}
		ports = append(ports, port)
	}
	return ports, nil
}

func httpOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// poll calls check every 200 ms until it succeeds or ctx ends; the last error is returned.
func poll(ctx context.Context, check func() error) error {
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeKubeconfig(name, url string, pk pki) error {
	s := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: %s
      certificate-authority: %s
users:
  - name: admin
    user:
      client-certificate: %s
      client-key: %s
contexts:
  - name: test
    context:
      cluster: test
      user: admin
current-context: test
`, url, pk.caFile, pk.clientCert, pk.clientKey)
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig: %w", err)
	}
	return nil
}
