package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep/vtepdbtest"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// sslVTEPDB is a real ovsdb-server serving the hardware_vtep database on a
// unix socket (for the test's own reads) and on ssl: with an ovs-pki
// certificate signed by the switch CA, requiring clients signed by the
// controller CA, as a switch would; physical switch tor1 with port p0.
type sslVTEPDB struct {
	unix, ssl string
	ctlFiles  TLSFiles // the controller's files: its key pair and the switch CA
}

func startSSLVTEPDB(t *testing.T) *sslVTEPDB {
	t.Helper()
	db := vtepdbtest.Start(t, vtepdbtest.Options{SSL: true})
	db.Switch(t, "tor1", "10.0.0.9", "p0")
	return &sslVTEPDB{unix: db.Unix, ssl: db.SSL,
		ctlFiles: TLSFiles{PrivateKey: db.Client.PrivateKey, Certificate: db.Client.Certificate, CACert: db.Client.CACert}}
}

// remote reads tor1's Ucast_Macs_Remote of network a as MAC/IP@locator,
// through the unix socket.
func (d *sslVTEPDB) remote(t *testing.T, topo *topology.Topology) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hwvtep.Connect(ctx, d.unix, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Show(ctx, topo.Name, "tor1", "tor1")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range st.Switches {
		if s.Name == "a" {
			for _, m := range s.RemoteMACs {
				out = append(out, m.MAC+"/"+m.IP+"@"+m.Locator)
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitRemote polls remote until it is want, and returns how long that took.
func (d *sslVTEPDB) waitRemote(t *testing.T, topo *topology.Topology, what string, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var got []string
	for time.Since(start) < 20*time.Second {
		if got = d.remote(t, topo); slices.Equal(got, want) {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: Ucast_Macs_Remote of a = %v, want %v", what, got, want)
	return 0
}

// The controller drives a hardware VTEP whose database only speaks ssl:,
// with the files of its --private-key, --certificate and --ca-cert; a
// reload that adds a VM's MAC reaches the switch, and one that puts the
// switch in learn mode empties the table the controller kept.
func TestHardwareVTEPSSLRealDatabase(t *testing.T) {
	d := startSSLVTEPDB(t)
	tor := "  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: '" + d.ssl + "'}}"
	topo := parseTopo(t, withTor1(tor))
	clientTLS, err := d.ctlFiles.OVSDBClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// apply over ssl: too, as `apply --host tor1` would.
	if _, err := hwvtep.Apply(ctx, hwvtep.Options{Topology: topo, Host: topo.Host("tor1"), TLS: clientTLS}); err != nil {
		t.Fatalf("apply over ssl: %v", err)
	}
	s := startTestServer(t, ServerOptions{Topology: topo, Grace: 10 * time.Millisecond, HardwareVTEPTLS: clientTLS}, nil)
	vm1 := "52:54:00:00:01:01/10.1.1.1@10.0.0.1"
	took := d.waitRemote(t, topo, "tor1 told of vm1 over ssl:", vm1)
	t.Logf("Ucast_Macs_Remote written over ssl: %v after the controller started", took.Round(time.Millisecond))

	// vm2 gets a MAC and an IP.
	topo2 := parseTopo(t, strings.Replace(withTor1(tor), "{host: h2, name: vm2}", `{host: h2, name: vm2, mac: "52:54:00:00:01:02", ip: 10.1.1.2/24}`, 1))
	if err := s.Reload(topo2); err != nil {
		t.Fatal(err)
	}
	vm2 := "52:54:00:00:01:02/10.1.1.2@10.0.0.2"
	d.waitRemote(t, topo, "tor1 told of vm2 after the reload", vm1, vm2)

	learn := strings.Replace(withTor1(tor), "managed: false,", "managed: false, mode: learn,", 1)
	if err := s.Reload(parseTopo(t, learn)); err != nil {
		t.Fatal(err)
	}
	d.waitRemote(t, topo, "tor1's Ucast_Macs_Remote emptied once in learn mode")
}
