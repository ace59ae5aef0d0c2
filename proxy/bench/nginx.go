package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/freeport"
)

// nginxConfig streams like the Go proxies: no response buffering (every
// chunk written on as it arrives), HTTP/1.1 keep-alive to the upstream,
// two worker processes for the two cores the Go proxies may use.
const nginxConfig = `worker_processes 2;
worker_rlimit_nofile 16384;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream fake { server %[2]s; keepalive 2048; keepalive_requests 1000000; }
  server {
    listen %[3]s backlog=4096;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`

// findNginx returns the nginx binary to compare with: path when set, else
// nginx on PATH or in /usr/sbin; "" when there is none.
func findNginx(path string) string {
	if path != "" {
		return path
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// startNginx runs nginx in the foreground in front of upstream (a URL),
// its configuration and files in dir. Its CPU time is its master's and its
// workers'.
func startNginx(bin, upstream, dir string) (*childProc, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, fmt.Errorf("nginx folder: %w", err)
	}
	cfg := filepath.Join(prefix, "nginx.conf")
	up := strings.TrimPrefix(upstream, "http://")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, nginxConfig, prefix, up, addr), 0o644); err != nil {
		return nil, fmt.Errorf("write nginx config: %w", err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", cfg, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// When the benchmark dies, nginx's master gets SIGTERM (a fast shutdown:
	// it stops its workers, then itself). SIGKILL left the workers running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	c := &childProc{cmd: cmd, base: "http://" + addr, workers: true, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case werr := <-c.done:
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			return nil, fmt.Errorf("nginx exited before listening (%v): %s", werr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = c.stop()
			return nil, fmt.Errorf("nginx not listening on %s after 10 s", addr)
		}
	}
}

// nginxVersion is what nginx -v says, or why it could not say.
func nginxVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s (version unknown: %v)", bin, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: "))
}
