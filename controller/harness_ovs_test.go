package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ovsHost is one managed host of a test topology: a private OVS in its own
// namespace with br-int and br-tun built the way apply builds them, and the
// port its controller target names inside that namespace.
type ovsHost struct {
	h     *topology.Host
	inst  *ovsrun.Instance
	port  int
	alloc topology.Allocation
}

// startHosts builds every managed host of topo. Bridges point at
// tcp:127.0.0.1:<port> in their namespace (scheme "ssl" for TLS); the
// listeners are returned for the first controller.
func startHosts(t *testing.T, topo *topology.Topology, scheme string) ([]*ovsHost, []net.Listener) {
	t.Helper()
	var hosts []*ovsHost
	var ls []net.Listener
	for _, h := range topo.ManagedHosts() {
		oh, l := startHost(t, topo, h, scheme)
		hosts = append(hosts, oh)
		ls = append(ls, l)
	}
	return hosts, ls
}

func startHost(t *testing.T, topo *topology.Topology, h *topology.Host, scheme string) (*ovsHost, net.Listener) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	inst := ovsruntest.Start(t, "cx-")
	l := ovsruntest.ListenTCP(t, inst.NetNS, "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	oh := &ovsHost{h: h, inst: inst, port: port, alloc: alloc}
	target := fmt.Sprintf("%s:127.0.0.1:%d", scheme, port)
	args := []string{}
	for _, br := range []string{topology.BridgeInt, topology.BridgeTun} {
		args = append(args, "--", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "fail_mode=secure",
			"protocols=OpenFlow13", "other_config:disable-in-band=true",
			fmt.Sprintf("other_config:datapath-id=%016x", topology.BridgeDatapathID(topo.Name, h.Name, br)),
			"controller=@c"+br[3:],
			"--", "--id=@c"+br[3:], "create", "controller", "target=\""+target+"\"", "max_backoff=1000",
			"connection_mode=out-of-band")
	}
	args = append(args,
		"--", "add-port", topology.BridgeInt, topology.PatchInt, "--", "set", "interface", topology.PatchInt, "type=patch", "options:peer="+topology.PatchTun,
		"--", "add-port", topology.BridgeTun, topology.PatchTun, "--", "set", "interface", topology.PatchTun, "type=patch", "options:peer="+topology.PatchInt,
		"ofport_request="+strconv.Itoa(topology.PatchOFPort))
	for _, p := range topo.Peers(h) {
		port := topology.TunnelPortName(p.Name)
		args = append(args, "--", "add-port", topology.BridgeTun, port, "--", "set", "interface", port, "type=vxlan",
			"options:remote_ip="+p.VTEP.String(), "options:key=flow", "options:dst_port=4789",
			"ofport_request="+strconv.Itoa(int(alloc.TunnelOFPort[p.Name])))
	}
	if _, err := inst.Vsctl(ctx, args...); err != nil {
		t.Fatal(err)
	}
	return oh, l
}

// advertise installs the allocation advertisement the way apply does.
func (oh *ovsHost) advertise(t *testing.T) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	sw, err := openflow.Dial(ctx, "unix:"+oh.inst.MgmtSocket(topology.BridgeTun), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if _, err := sw.Reconcile(ctx, flows.CompileAllocation(oh.alloc), flows.CookieAllocation, flows.CookieOwnerMask); err != nil {
		t.Fatal(err)
	}
}

// dump returns a bridge's flows as ovs-ofctl prints them, sorted.
func (oh *ovsHost) dump(t testing.TB, bridge string, args ...string) []string {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	out, err := oh.inst.Ofctl(ctx, "dump-flows", bridge, append([]string{"--no-stats"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return ovstest.SortedLines(out)
}

// want is what the controller (and apply's advertisement) should leave on
// the host's bridges for the knowledge eps.
func (oh *ovsHost) want(t testing.TB, topo *topology.Topology, eps []flows.Endpoint) (brInt, brTun []string) {
	t.Helper()
	prog, err := flows.Compile(topo, oh.h, oh.alloc)
	if err != nil {
		t.Fatal(err)
	}
	tun := append(slices.Clone(prog.Tun), flows.CompileEndpoints(topo, oh.h, oh.alloc, eps)...)
	tun = append(tun, flows.CompileAllocation(oh.alloc)...)
	str := func(fl []flows.Flow) []string {
		out := make([]string, len(fl))
		for i, f := range fl {
			out[i] = f.String()
		}
		sort.Strings(out)
		return out
	}
	return str(prog.Int), str(tun)
}

// packetOut runs a frame through br-tun's pipeline as if br-int had sent it
// through the patch port.
func (oh *ovsHost) packetOut(t testing.TB, frame string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	if _, err := oh.inst.Ofctl(ctx, "packet-out", topology.BridgeTun, "in_port=1 packet="+frame+" actions=table"); err != nil {
		t.Fatal(err)
	}
}

// taggedFrame is a broadcast ARP request from src (announcing ip, 4 bytes
// hex) on VLAN vlan, as br-int hands it to br-tun.
func taggedFrame(src string, vlan uint16, ip string) string {
	return "ffffffffffff" + strings.ReplaceAll(src, ":", "") + fmt.Sprintf("8100%04x", vlan) + "0806" +
		"0001080006040001" + strings.ReplaceAll(src, ":", "") + ip + "000000000000" + "0a0100fe"
}

// runServer runs a controller in the background until the test (or stop)
// ends it.
type runningServer struct {
	*Server
	stop func()
}

// The server lives until owner (t or a parent of it) ends.
func runServer(t, owner *testing.T, o ServerOptions) *runningServer {
	t.Helper()
	return runServerTweaked(t, owner, o, nil)
}

// runServerTweaked is runServer with tweak (if any) applied to the Server
// before Run: what options cannot set, such as the hardware VTEP connector.
func runServerTweaked(t, owner *testing.T, o ServerOptions, tweak func(*Server)) *runningServer {
	t.Helper()
	if o.Log == nil {
		o.Log = zaptest.NewLogger(owner)
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("controller did not start: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					owner.Errorf("controller: %v", err)
				}
			case <-time.After(20 * time.Second):
				owner.Error("controller did not stop within 20s")
			}
		})
	}
	owner.Cleanup(stop)
	return &runningServer{srv, stop}
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// synced reports whether n switches are connected and synced, every br-tun
// with knowledge version v or later (br-int's flows do not depend on it).
func (s *Server) synced(v uint64, n int) bool {
	sw := s.Switches()
	if len(sw) != n {
		return false
	}
	for _, st := range sw {
		if !st.Synced || (st.Bridge == topology.BridgeTun && st.SyncedVersion < v) {
			return false
		}
	}
	return true
}
