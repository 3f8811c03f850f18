package ovsdb

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
)

// TestConnectSSL: `--db ssl:IP:PORT` against a real ovsdb-server serving
// pssl: with certificates made by ovs-pki. The right files connect; no
// files, and a certificate of another CA, are refused with a clear error.
func TestConnectSSL(t *testing.T) {
	ovsruntest.Require(t, "ovs-pki", "ovsdb-tool")
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ovs-pki", "--dir="+pki, "init")
	run("ovs-pki", "--dir="+pki, "req+sign", "db", "controller")
	run("ovs-pki", "--dir="+pki, "req+sign", "client", "switch")
	db := filepath.Join(dir, "conf.db")
	run("ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema")

	port := freePort(t)
	endpoint := "ssl:127.0.0.1:" + strconv.Itoa(port)
	server := exec.Command("ovsdb-server", db, "--remote=pssl:"+strconv.Itoa(port)+":127.0.0.1", // passive: PORT:IP
		"--private-key="+filepath.Join(dir, "db-privkey.pem"),
		"--certificate="+filepath.Join(dir, "db-cert.pem"),
		"--ca-cert="+filepath.Join(pki, "switchca", "cacert.pem"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	waitListening(t, port)

	good := &SSLFiles{
		PrivateKey:  filepath.Join(dir, "client-privkey.pem"),
		Certificate: filepath.Join(dir, "client-cert.pem"),
		CACert:      filepath.Join(pki, "controllerca", "cacert.pem"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, endpoint, nil, WithTLSFiles(good))
	if err != nil {
		t.Fatalf("connecting with ovs-pki's certificates: %v", err)
	}
	c.Close()

	if _, err := Connect(ctx, endpoint, nil); err == nil || !strings.Contains(err.Error(), "--db-private-key") {
		t.Errorf("ssl: without files: %v, want an error naming --db-private-key", err)
	}
	// A CA that did not sign the server's certificate: refused, quickly.
	wrongCA := *good
	wrongCA.CACert = filepath.Join(pki, "switchca", "cacert.pem")
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if c, err := Connect(short, endpoint, nil, WithTLSFiles(&wrongCA)); err == nil {
		c.Close()
		t.Error("connected to a server whose certificate the CA did not sign")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ovsdb-server never listened on port %d", port)
}
