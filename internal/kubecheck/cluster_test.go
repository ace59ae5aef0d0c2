package kubecheck

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterConfigValidate(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  ClusterConfig
		want string
	}{
		{ClusterConfig{EtcdBin: exe, APIServerBin: exe, Dir: dir}, ""},
		{ClusterConfig{APIServerBin: exe, Dir: dir}, "EtcdBin is empty"},
		{ClusterConfig{EtcdBin: exe, APIServerBin: plain, Dir: dir}, "APIServerBin"},
		{ClusterConfig{EtcdBin: exe, APIServerBin: exe, Dir: exe}, "Dir"},
		{ClusterConfig{EtcdBin: exe, APIServerBin: exe, Dir: dir, StartTimeout: -1}, "StartTimeout"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The generated certificates chain to the CA with the usages the API server and its client need.
func TestPKIChains(t *testing.T) {
	p, err := writePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	for _, c := range []struct {
		cert, key string
		usage     x509.ExtKeyUsage
		name      string
	}{{p.serverCert, p.serverKey, x509.ExtKeyUsageServerAuth, "127.0.0.1"}, {p.clientCert, p.clientKey, x509.ExtKeyUsageClientAuth, ""}} {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.cert, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{c.usage}}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s does not verify for its use: %v", filepath.Base(c.cert), err)
		}
		if c.name != "" {
			if err := leaf.VerifyHostname(c.name); err != nil {
				t.Errorf("%s: %v", filepath.Base(c.cert), err)
			}
		} else if len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:masters" {
			t.Errorf("client certificate's groups %v, want system:masters", leaf.Subject.Organization)
		}
	}
}
