package controller

import (
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
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

// TestControllerTLS: certificates made by ovs-pki. A switch with a
// certificate signed by the switch CA connects over mutual TLS and gets its
// flows; one with a self-signed certificate (and the right datapath ID) is
// refused before OpenFlow begins.
func TestControllerTLS(t *testing.T) {
	ovstest.Require(t, "ovs-pki")
	ctx := ctxFor(t, 2*time.Minute)
	dir, err := os.MkdirTemp("/tmp", "cx-pki-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pki := filepath.Join(dir, "pki")
	for _, args := range [][]string{
		{"--dir=" + pki, "init"},
		{"--dir=" + pki, "req+sign", "ctl", "controller"},
		{"--dir=" + pki, "req+sign", "sc", "switch"},
		{"req", "rogue"},
		{"self-sign", "rogue"},
	} {
		cmd := exec.CommandContext(ctx, "ovs-pki", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovs-pki %v: %v: %s", args, err, out)
		}
	}
	cfg, err := TLSFiles{
		PrivateKey:  filepath.Join(dir, "ctl-privkey.pem"),
		Certificate: filepath.Join(dir, "ctl-cert.pem"),
		CACert:      filepath.Join(pki, "switchca", "cacert.pem"),
	}.Config()
	if err != nil {
		t.Fatal(err)
	}

	topo := parseTopo(t, tlsTopo)
	hosts, ls := startHosts(t, topo, "ssl")
	good, rogue := hostNamed(hosts, "good"), hostNamed(hosts, "rogue")
	// Each switch trusts the controller CA; the good one has a certificate
	// from the switch CA, the rogue one a self-signed one.
	for oh, name := range map[*ovsHost]string{good: "sc", rogue: "rogue"} {
		if _, err := oh.inst.Vsctl(ctx, "set-ssl", filepath.Join(dir, name+"-privkey.pem"), filepath.Join(dir, name+"-cert.pem"),
			filepath.Join(pki, "controllerca", "cacert.pem")); err != nil {
			t.Fatal(err)
		}
		oh.advertise(t)
	}
	var tlsLs []net.Listener
	for _, l := range ls {
		tlsLs = append(tlsLs, tls.NewListener(l, cfg))
	}
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: tlsLs, Grace: 500 * time.Millisecond})
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
	if got := good.dump(t, ovsdb.BridgeTun); len(got) != len(wantTun) {
		t.Errorf("good br-tun has %d flows, want %d", len(got), len(wantTun))
	}
	// The rogue host keeps only what apply installed (the advertisement).
	if got := rogue.dump(t, ovsdb.BridgeTun); len(got) != 1 {
		t.Errorf("rogue br-tun: %q", got)
	}
	if got := rogue.dump(t, ovsdb.BridgeInt); len(got) != 0 {
		t.Errorf("rogue br-int: %q", got)
	}
}
