package hostagent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The agent against a real OVS in a namespace of its own.

// ovsTopo is host1 and host2 (userspace datapath, learn mode) sharing
// tenant-a, where host1's port web is given by iface_id; extra adds YAML
// network items.
func ovsTopo(web bool, extra string) string {
	s := "name: haovs\ndefaults: {datapath: netdev}\nhosts:\n  - {name: host1, vtep: 192.168.50.1}\n  - {name: host2, vtep: 192.168.50.2}\n" +
		"networks:\n  - name: tenant-a\n    vni: 100\n    ports:\n      - {host: host2, name: vm2}\n"
	if web {
		s += "      - {host: host1, name: web, iface_id: vm-web-01}\n"
	}
	return s + extra
}

// ovsAgent is an agent running in the namespace of a private OVS.
type ovsAgent struct {
	t    *testing.T
	ovs  *ovsrun.Instance
	db   *ovsdb.Client // the test's own view of the database
	top  func() *topology.Topology
	file string
	logs *observer.ObservedLogs
	ctx  context.Context
}

func startAgent(t *testing.T, content string) *ovsAgent {
	t.Helper()
	inst := ovsruntest.Start(t, "ha")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	file := filepath.Join(t.TempDir(), "topology.yaml")
	writeFile(t, file, content)
	top, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go inNS(t, inst.NetNS, func() {
		defer wg.Done()
		err := Run(runCtx, Config{File: file, Topology: top, Host: "host1", DB: inst.DBEndpoint(), RunDir: inst.Dir,
			MetricsListen: "127.0.0.1:0", Log: log})
		if err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	// Registered after Start's clean-up, so it runs before OVS stops.
	t.Cleanup(func() { stop(); wg.Wait() })
	db, err := ovsdb.Connect(ctx, inst.DBEndpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	a := &ovsAgent{t: t, ovs: inst, db: db, file: file, logs: logs, ctx: ctx}
	a.top = func() *topology.Topology {
		tp, err := topology.Load(a.file)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	return a
}

// inNS runs fn on a thread of its own inside network namespace ns, as
// `ip netns exec` would run the agent: the ip commands of apply, forked
// from that thread, see the host's interfaces.
func inNS(t *testing.T, ns string, fn func()) {
	if err := ovsruntest.InNetNS(ns, func() error { fn(); return nil }); err != nil {
		t.Errorf("in namespace %s: %v", ns, err)
	}
}

func (a *ovsAgent) vsctl(args ...string) string {
	a.t.Helper()
	out, err := a.ovs.Vsctl(a.ctx, args...)
	if err != nil {
		a.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// until polls cond every 2 ms until it holds, failing after within; it
// returns when it first held.
func (a *ovsAgent) until(within time.Duration, what string, cond func() bool) time.Time {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// binding reads port's binding as the test sees OVSDB.
func (a *ovsAgent) binding(port string) ovsdb.Binding {
	a.t.Helper()
	tp := a.top()
	bs, err := a.db.Bindings(a.ctx, tp, tp.Host("host1"))
	if err != nil {
		a.t.Fatal(err)
	}
	for _, b := range bs {
		if b.Port == port {
			return b
		}
	}
	return ovsdb.Binding{}
}

// ovsdbState is what a refused file must not change: every bridge, port and
// interface name, every tag, and next_cfg.
func (a *ovsAgent) ovsdbState() string {
	a.t.Helper()
	var parts []string
	for _, q := range [][]string{{"Bridge", "name"}, {"Port", "name"}, {"Port", "tag"}, {"Interface", "name"}} {
		vals := strings.Fields(a.vsctl("--bare", "--columns="+q[1], "list", q[0]))
		slices.Sort(vals)
		parts = append(parts, q[0]+"."+q[1]+": "+strings.Join(vals, " "))
	}
	return strings.Join(append(parts, "next_cfg: "+a.vsctl("get", "Open_vSwitch", ".", "next_cfg")), "\n")
}

// The agent binds a VM plugged libvirt-style within a second, applies a
// network added to the file, refuses a broken file (logged, nothing
// changed), and unbinds a port removed from the file.
func TestAgentOnRealOVS(t *testing.T) {
	a := startAgent(t, ovsTopo(true, ""))
	a.until(20*time.Second, "the first apply", func() bool {
		return strings.Contains(a.vsctl("--if-exists", "get", "Bridge", "br-int", "external_ids"), "ovs-vxctl-local-vlans")
	})

	ovsruntest.Run(t, a.ovs.NetNS, "ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "vnet0p")
	ovsruntest.Run(t, a.ovs.NetNS, "ip", "link", "set", "vnet0", "up")
	plug := time.Now()
	a.vsctl("add-port", "br-int", "vnet0", "--", "set", "Interface", "vnet0",
		"external_ids:iface-id=vm-web-01", "external_ids:attached-mac=52:54:00:00:0a:01")
	plugged := time.Now()
	bound := a.until(time.Second, "vnet0 bound (tag set)", func() bool {
		b := a.binding("web")
		return b.Bound && b.Tag > 0 && b.Tag < ovsdb.DeadVLAN
	})
	t.Logf("BIND_LATENCY plug->tag %v (ovs-vsctl add-port itself took %v; from its return %v)",
		bound.Sub(plug).Round(time.Millisecond), plugged.Sub(plug).Round(time.Millisecond), bound.Sub(plugged).Round(time.Millisecond))

	// A network added to the file: its internal port is created and tagged.
	withNet := ovsTopo(true, "  - name: tenant-b\n    vni: 200\n    ports:\n      - {host: host1, name: int2, type: internal, ip: 10.2.0.1/24}\n      - {host: host2, name: vm3}\n")
	writeFile(t, a.file, withNet)
	a.until(5*time.Second, "int2 created for the added network", func() bool {
		return strings.Contains(a.vsctl("--if-exists", "get", "Bridge", "br-int", "external_ids:ovs-vxctl-local-vlans"), "200=")
	})
	a.until(5*time.Second, "int2 tagged", func() bool { return a.vsctl("--if-exists", "get", "Port", "int2", "tag") != "[]" })

	// A broken file: logged with its problems, nothing changes.
	time.Sleep(300 * time.Millisecond) // let the agent settle after its own changes
	before := a.ovsdbState()
	writeFile(t, a.file, strings.Replace(withNet, "vni: 200", "vni: 100", 1))
	a.until(5*time.Second, "the refusal logged", func() bool {
		return a.logs.FilterMessageSnippet("topology file refused").Len() > 0
	})
	time.Sleep(500 * time.Millisecond)
	if after := a.ovsdbState(); after != before {
		t.Errorf("a broken file changed OVSDB:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	refusal := fmt.Sprint(a.logs.FilterMessageSnippet("topology file refused").All()[0].ContextMap()["problems"])
	if !strings.Contains(refusal, "networks[1].vni: 100 is already used by networks[0]") {
		t.Errorf("refusal logged problems %s, want the duplicate VNI", refusal)
	}

	// web removed from the file: vnet0 on the dead VLAN, the row kept.
	writeFile(t, a.file, ovsTopo(false, ""))
	a.until(5*time.Second, "vnet0 unbound", func() bool { return a.vsctl("get", "Port", "vnet0", "tag") == "4095" })
	if ext := a.vsctl("get", "Port", "vnet0", "external_ids"); strings.Contains(ext, "ovs-vxctl-") {
		t.Errorf("vnet0 keeps our keys: %s", ext)
	}
}
