// Package vtepdbtest runs a real, standalone ovsdb-server serving a
// hardware_vtep database for tests: on a unix socket, and optionally on
// ssl: with ovs-pki certificates as a switch would have them (its own
// signed by the switch CA, clients required to be signed by the controller
// CA). No network namespace and no ovs-vswitchd: nothing but the database,
// so it also serves schemas the emulator would not run with (an older
// version, a hostile content).
package vtepdbtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
)

// DB is a running ovsdb-server with a hardware_vtep database.
type DB struct {
	// Unix is the unix: endpoint; SSL the ssl: one ("" without SSL).
	Unix, SSL string
	// Client are a client's files for SSL: a key pair signed by the
	// controller CA and the switch CA's certificate.
	Client ovsdb.SSLFiles
	// Dir holds the database, the certificates and the server's log.
	Dir string
}

// Options say what to serve.
type Options struct {
	// Schema is the schema file; "" for ovsrun.VTEPSchemaPath.
	Schema string
	// SSL also serves ssl: on a free port of 127.0.0.1.
	SSL bool
}

// Start starts the server (skipping t under -short or without the tools)
// and stops it when t ends.
func Start(t testing.TB, o Options) *DB {
	t.Helper()
	ovsruntest.Require(t, "ovs-pki", "vtep-ctl")
	if o.Schema == "" {
		o.Schema = ovsrun.VTEPSchemaPath
	}
	dir, err := os.MkdirTemp("/tmp", "vtepdb-") // unix socket paths stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &DB{Dir: dir, Unix: "unix:" + filepath.Join(dir, "db.sock")}
	db := filepath.Join(dir, "vtep.db")
	run(t, dir, "ovsdb-tool", "create", db, o.Schema)
	args := []string{db, "--remote=p" + d.Unix, "--unixctl=" + filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file=" + filepath.Join(dir, "ovsdb-server.log")}
	var port string
	if o.SSL {
		pki := filepath.Join(dir, "pki")
		run(t, dir, "ovs-pki", "--dir="+pki, "init")
		run(t, dir, "ovs-pki", "--dir="+pki, "req+sign", "vtep", "switch")
		run(t, dir, "ovs-pki", "--dir="+pki, "req+sign", "ctl", "controller")
		port = freePort(t)
		d.SSL = "ssl:127.0.0.1:" + port
		d.Client = ovsdb.SSLFiles{PrivateKey: filepath.Join(dir, "ctl-privkey.pem"), Certificate: filepath.Join(dir, "ctl-cert.pem"),
			CACert: filepath.Join(pki, "switchca", "cacert.pem")}
		args = append(args, "--remote=pssl:"+port+":127.0.0.1",
			"--private-key="+filepath.Join(dir, "vtep-privkey.pem"), "--certificate="+filepath.Join(dir, "vtep-cert.pem"),
			"--ca-cert="+filepath.Join(pki, "controllerca", "cacert.pem"))
	}
	server := exec.Command("ovsdb-server", args...)
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	sock := filepath.Join(dir, "db.sock")
	wait(t, "ovsdb-server on "+d.Unix, func() bool { return dial("unix", sock) })
	if o.SSL {
		wait(t, "ovsdb-server on "+d.SSL, func() bool { return dial("tcp", "127.0.0.1:"+port) })
	}
	return d
}

// Vtepctl runs vtep-ctl against the database over its unix socket.
func (d *DB) Vtepctl(t testing.TB, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, d.Dir, "vtep-ctl", append([]string{"--db=" + d.Unix, "--timeout=20"}, args...)...))
}

// Switch adds physical switch name with tunnel_ips ip and ports.
func (d *DB) Switch(t testing.TB, name, ip string, ports ...string) {
	t.Helper()
	d.Vtepctl(t, "add-ps", name)
	if ip != "" {
		d.Vtepctl(t, "set", "Physical_Switch", name, "tunnel_ips="+ip)
	}
	for _, p := range ports {
		d.Vtepctl(t, "add-port", name, p)
	}
}

// Transact runs one transaction of ops (JSON operations) over the unix
// socket, for rows vtep-ctl cannot write (malformed ones) or too many for
// it, and returns its results; an operation's error fails t.
func (d *DB) Transact(t testing.TB, ops ...map[string]any) []map[string]any {
	t.Helper()
	c, err := net.Dial("unix", strings.TrimPrefix(d.Unix, "unix:"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	params := []any{"hardware_vtep"}
	for _, o := range ops {
		params = append(params, o)
	}
	if err := json.NewEncoder(c).Encode(map[string]any{"method": "transact", "params": params, "id": 1}); err != nil {
		t.Fatal(err)
	}
	var reply struct {
		ID     any              `json:"id"`
		Method string           `json:"method"`
		Params []any            `json:"params"`
		Result []map[string]any `json:"result"`
		Error  any              `json:"error"`
	}
	dec := json.NewDecoder(c)
	for {
		if err := dec.Decode(&reply); err != nil {
			t.Fatalf("reading the transaction's reply: %v", err)
		}
		if reply.Method != "echo" { // the server's inactivity probe
			break
		}
		json.NewEncoder(c).Encode(map[string]any{"result": reply.Params, "error": nil, "id": reply.ID})
		reply.Method = ""
	}
	if reply.Error != nil {
		t.Fatalf("transaction failed: %v", reply.Error)
	}
	for i, r := range reply.Result {
		if r["error"] != nil {
			t.Fatalf("transaction failed at operation %d: %v %v", i, r["error"], r["details"])
		}
	}
	return reply.Result
}

// OldSchema writes a copy of the hardware_vtep schema that claims version
// and lacks the columns drop ("Table.column"), and returns its path.
func OldSchema(t testing.TB, version string, drop ...string) string {
	t.Helper()
	b, err := os.ReadFile(ovsrun.VTEPSchemaPath)
	if err != nil {
		t.Skipf("no hardware_vtep schema: %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s["version"] = version
	tables := s["tables"].(map[string]any)
	for _, c := range drop {
		table, col, _ := strings.Cut(c, ".")
		delete(tables[table].(map[string]any)["columns"].(map[string]any), col)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "vtep-"+version+".ovsschema")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %.300s: %v: %.2000s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func dial(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal(fmt.Sprintf("%s: not within 20s", what))
		}
	}
}
