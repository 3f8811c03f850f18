package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Helpers of the seeds' tests (seeds_test.go): a lab from an edited copy
// of an example, VXLAN decoding on any port, and counting copies of one
// frame on the underlay.

// upLabVariant is upLab for a variant of example: the copy is named
// namePrefix+example+suffix (so it runs beside the plain example's lab) and
// edit is applied to its text. Golden flows are the example's, so flow
// checks only make sense when edit keeps the flows.
func upLabVariant(t *testing.T, example, suffix string, edit func(string) string) *labEnv {
	t.Helper()
	dir := filepath.Join(workDir, example+suffix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := copyExample(t, example, dir, "topology.yaml", func(s string) string {
		s = strings.Replace(s, "\nname: "+namePrefix+example+"\n", "\nname: "+namePrefix+example+suffix+"\n", 1)
		if !strings.Contains(s, "\nname: "+namePrefix+example+suffix+"\n") {
			t.Fatalf("examples/%s/topology.yaml: could not rename the copy to %s", example, namePrefix+example+suffix)
		}
		return edit(s)
	})
	return startLab(t, example, file)
}

// controllerMode turns a topology's text to controller mode, with the lab's
// controller on the underlay at 192.168.50.254.
func controllerMode(s string) string {
	re := regexp.MustCompile(`(?m)^  mode: learn\b.*$`)
	s = re.ReplaceAllString(s, "  mode: controller")
	return strings.Replace(s, "\nhosts:\n", "\ncontroller: tcp:192.168.50.254:6653\n\nhosts:\n", 1)
}

// vtep is the underlay address of host.
func (l *labEnv) vtep(t testing.TB, host string) string {
	t.Helper()
	h := l.topo.Host(host)
	if h == nil {
		t.Fatalf("topology %s has no host %s", l.topo.Name, host)
	}
	return h.VTEP.String()
}

// hostOfVTEP maps underlay addresses to host names.
func (l *labEnv) hostOfVTEP() map[string]string {
	m := map[string]string{}
	for _, h := range l.topo.Hosts {
		m[h.VTEP.String()] = h.Name
	}
	return m
}

// network returns the network called name.
func (l *labEnv) network(t testing.TB, name string) *topology.Network {
	t.Helper()
	n := l.topo.Network(name)
	if n == nil {
		t.Fatalf("topology %s has no network %s", l.topo.Name, name)
	}
	return n
}

// port returns the port called name on host.
func (l *labEnv) port(t testing.TB, host, name string) *topology.Port {
	t.Helper()
	for _, p := range l.topo.PortsOn(l.topo.Host(host)) {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("topology %s has no port %s on %s", l.topo.Name, name, host)
	return nil
}

// broadcastAddr is the IPv4 broadcast address of prefix p.
func broadcastAddr(p netip.Prefix) string {
	a := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(a).String()
}

// copyKey is one copy of a frame on the underlay: the outer destination
// VTEP, UDP port and VNI.
type copyKey struct {
	dst  string
	port string
	vni  string
}

func (k copyKey) String() string { return fmt.Sprintf("%s:%s vni %s", k.dst, k.port, k.vni) }

// linkMAC returns the MAC of dev in the namespace of lab name (host or VM).
func (l *labEnv) linkMAC(t testing.TB, name, dev string) string {
	t.Helper()
	r := l.mustExec(t, name, "ip", "-j", "link", "show", "dev", dev)
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show dev %s in %s: %v: %s", dev, name, err, r.stdout)
	}
	return strings.ToLower(links[0].Address)
}

// readSysctl reads a /proc/sys file inside the namespace of host.
func (l *labEnv) readSysctl(t testing.TB, host, path string) string {
	t.Helper()
	return strings.TrimSpace(l.mustExec(t, host, "cat", path).stdout)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}
