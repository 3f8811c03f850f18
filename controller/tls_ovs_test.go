package controller

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

const tlsTopo = `
name: ctl-tls
defaults: {mode: controller, datapath: netdev}
controller: ssl:127.0.0.1:6653
hosts:
  - {name: good, vtep: 192.0.2.1}
  - {name: rogue, vtep: 192.0.2.2}
networks:
  - name: n
    vni: 100
    ports:
      - {host: good, name: p1, mac: "52:54:00:00:01:01"}
      - {host: rogue, name: p2, mac: "52:54:00:00:01:02"}
`

// testPKI is a PKI made by ovs-pki in a temporary directory: a controller
// key and certificate ("ctl") and, per name, a switch key and certificate
// signed by the switch CA (CN "<name> id:<uuid>", as ovs-pki writes it).
type testPKI struct{ dir, pki string }

func newTestPKI(t *testing.T, ctx context.Context, switches ...string) *testPKI {
	t.Helper()
	ovstest.Require(t, "ovs-pki")
	dir, err := os.MkdirTemp("/tmp", "cx-pki-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &testPKI{dir: dir, pki: filepath.Join(dir, "pki")}
	run := func(args ...string) {
		cmd := exec.CommandContext(ctx, "ovs-pki", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovs-pki %v: %v: %s", args, err, out)
		}
	}
	run("--dir="+p.pki, "init")
	run("--dir="+p.pki, "req+sign", "ctl", "controller")
	for _, name := range switches {
		run("--dir="+p.pki, "req+sign", name, "switch")
	}
	return p
}

// serverConfig is the controller's TLS configuration: its certificate,
// switches' certificates checked against the switch CA.
func (p *testPKI) serverConfig(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := TLSFiles{
		PrivateKey:  filepath.Join(p.dir, "ctl-privkey.pem"),
		Certificate: filepath.Join(p.dir, "ctl-cert.pem"),
		CACert:      filepath.Join(p.pki, "switchca", "cacert.pem"),
	}.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// setSSL gives oh's switch the key and certificate of name, trusting the
// controller CA.
func (p *testPKI) setSSL(t *testing.T, ctx context.Context, oh *ovsHost, name string) {
	t.Helper()
	if _, err := oh.inst.Vsctl(ctx, "set-ssl", filepath.Join(p.dir, name+"-privkey.pem"), filepath.Join(p.dir, name+"-cert.pem"),
		filepath.Join(p.pki, "controllerca", "cacert.pem")); err != nil {
		t.Fatal(err)
	}
}

func tlsListeners(ls []net.Listener, cfg *tls.Config) []net.Listener {
	var out []net.Listener
	for _, l := range ls {
		out = append(out, tls.NewListener(l, cfg))
	}
	return out
}

// TestControllerTLS: certificates made by ovs-pki. A switch with a
// certificate signed by the switch CA and naming its host connects over
// mutual TLS and gets its flows; one with a self-signed certificate (and
// the right datapath ID) is refused before OpenFlow begins.
func TestControllerTLS(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	p := newTestPKI(t, ctx, "good")
	for _, args := range [][]string{{"req", "rogue"}, {"self-sign", "rogue"}} {
		cmd := exec.CommandContext(ctx, "ovs-pki", args...)
		cmd.Dir = p.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovs-pki %v: %v: %s", args, err, out)
		}
	}

	topo := parseTopo(t, tlsTopo)
	hosts, ls := startHosts(t, topo, "ssl")
	good, rogue := hostNamed(hosts, "good"), hostNamed(hosts, "rogue")
	// Each switch trusts the controller CA; the good one has a certificate
	// from the switch CA, the rogue one a self-signed one.
	for oh, name := range map[*ovsHost]string{good: "good", rogue: "rogue"} {
		p.setSSL(t, ctx, oh, name)
		oh.advertise(t)
	}
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: tlsListeners(ls, p.serverConfig(t)), Grace: 500 * time.Millisecond})
	eventually(t, 30*time.Second, "good switches synced", func() bool { return srv.synced(0, 2) })
	eventually(t, 30*time.Second, "rogue switch refused for its certificate", func() bool {
		for _, r := range srv.Refusals() {
			if strings.Contains(r.Reason, "certificate") {
				t.Logf("refused %s: %s", r.Remote, r.Reason)
				return true
			}
		}
		return false
	})
	for _, st := range srv.Switches() {
		if st.Host != "good" {
			t.Errorf("switch of host %s connected with a self-signed certificate", st.Host)
		}
	}
	eps, _ := srv.Knowledge().Endpoints()
	_, wantTun := good.want(t, topo, eps)
	if got := good.dump(t, topology.BridgeTun); len(got) != len(wantTun) {
		t.Errorf("good br-tun has %d flows, want %d", len(got), len(wantTun))
	}
	// The rogue host keeps only what apply installed (the advertisement).
	if got := rogue.dump(t, topology.BridgeTun); len(got) != 1 {
		t.Errorf("rogue br-tun: %q", got)
	}
	if got := rogue.dump(t, topology.BridgeInt); len(got) != 0 {
		t.Errorf("rogue br-int: %q", got)
	}
}

const tlsNamesTopo = `
name: ctl-tls-names
defaults: {mode: controller, datapath: netdev}
controller: ssl:127.0.0.1:6653
hosts:
  - {name: host1, vtep: 192.0.2.1}
  - {name: host2, vtep: 192.0.2.2}
networks:
  - name: n
    vni: 100
    ports:
      - {host: host1, name: p1, mac: "52:54:00:00:01:01"}
      - {host: host2, name: p2, mac: "52:54:00:00:01:02"}
`

// TestControllerTLSCertificateNamesHost: a switch holding host2's
// certificate (signed by the CA) whose bridges claim host1's datapath IDs is
// refused and gets no flow, while host2's own switch with the same
// certificate is served; given host1's certificate, the first is served too.
func TestControllerTLSCertificateNamesHost(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	p := newTestPKI(t, ctx, "host1", "host2")
	topo := parseTopo(t, tlsNamesTopo)
	hosts, ls := startHosts(t, topo, "ssl")
	h1, h2 := hostNamed(hosts, "host1"), hostNamed(hosts, "host2")
	p.setSSL(t, ctx, h1, "host2") // host1's bridges, host2's certificate
	p.setSSL(t, ctx, h2, "host2")
	for _, oh := range hosts {
		oh.advertise(t)
	}
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: tlsListeners(ls, p.serverConfig(t)), Grace: 500 * time.Millisecond})
	eventually(t, 30*time.Second, "host2's switches synced", func() bool { return srv.synced(0, 2) })
	eventually(t, 30*time.Second, "host1's switches refused for host2's certificate", func() bool {
		n := 0
		for _, r := range srv.Refusals() {
			if strings.Contains(r.Reason, "of host host1: the certificate names") && strings.Contains(r.Reason, `"host2 id:`) {
				n++
			}
		}
		return n >= 2 // br-int and br-tun
	})
	for _, r := range srv.Refusals() {
		t.Logf("refused %016x from %s: %s", r.DatapathID, r.Remote, r.Reason)
	}
	if v, _ := metricValue(t, srv.Server, "switches_refused_total", "reason", refusedCertificate); v < 2 {
		t.Errorf("refused{reason=certificate} = %v, want at least 2", v)
	}
	for _, st := range srv.Switches() {
		if st.Host != "host2" {
			t.Errorf("switch of host %s served to a certificate of host2", st.Host)
		}
	}
	if got := h1.dump(t, topology.BridgeTun); len(got) != 1 { // apply's advertisement only
		t.Errorf("host1's br-tun got flows: %q", got)
	}
	if got := h1.dump(t, topology.BridgeInt); len(got) != 0 {
		t.Errorf("host1's br-int got flows: %q", got)
	}

	// With its own certificate, host1 is served.
	p.setSSL(t, ctx, h1, "host1")
	eventually(t, 60*time.Second, "host1's switches synced with host1's certificate", func() bool { return srv.synced(0, 4) })
}
