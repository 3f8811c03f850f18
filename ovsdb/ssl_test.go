package ovsdb

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// pki is a CA with a switch certificate and a controller certificate it
// signed, written as PEM files.
type pki struct {
	switchFiles SSLFiles
	controller  tls.Certificate
	caPool      *x509.CertPool
}

// newPKI creates the CA and both certificates in dir.
func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hy test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		k := newKey()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return k, der
	}
	pkcs8 := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	p := &pki{caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	swKey, swDER := issue(2, "host1", x509.ExtKeyUsageClientAuth)
	p.switchFiles = SSLFiles{
		PrivateKey:  writePEM("sw-key.pem", "PRIVATE KEY", pkcs8(swKey)),
		Certificate: writePEM("sw-cert.pem", "CERTIFICATE", swDER),
		CACert:      writePEM("ca.pem", "CERTIFICATE", caDER),
	}
	ctlKey, ctlDER := issue(3, "controller", x509.ExtKeyUsageServerAuth)
	p.controller = tls.Certificate{Certificate: [][]byte{ctlDER}, PrivateKey: ctlKey}
	return p
}

// tlsSwitches accepts TLS connections on ln from switches whose certificate
// the CA signed, and sends the datapath ID of each (its OpenFlow 1.3
// features reply) or what went wrong.
func tlsSwitches(ln net.Listener, p *pki) <-chan string {
	out := make(chan string, 16)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{p.controller},
		ClientCAs:    p.caPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn := tls.Server(raw, cfg)
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				out <- featuresDPID(conn)
			}()
		}
	}()
	return out
}

// featuresDPID completes the TLS handshake, says hello in OpenFlow 1.3, asks
// for the features and returns "dpid=<16 hex digits> cn=<client CN>".
func featuresDPID(conn *tls.Conn) string {
	if err := conn.Handshake(); err != nil {
		return "handshake: " + err.Error()
	}
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	hello := []byte{4, 0, 0, 8, 0, 0, 0, 1}
	features := []byte{4, 5, 0, 8, 0, 0, 0, 2}
	if _, err := conn.Write(append(hello, features...)); err != nil {
		return "write: " + err.Error()
	}
	for {
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return "read: " + err.Error()
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if n < 8 {
			return fmt.Sprintf("bad OpenFlow length %d", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(conn, body); err != nil {
			return "read: " + err.Error()
		}
		if hdr[0] != 4 {
			return fmt.Sprintf("OpenFlow version %d, want 4", hdr[0])
		}
		if hdr[1] == 6 && len(body) >= 8 { // OFPT_FEATURES_REPLY
			return fmt.Sprintf("dpid=%016x cn=%s", binary.BigEndian.Uint64(body[:8]), cn)
		}
	}
}

// sslRow returns the UUID Open_vSwitch.ssl points at ("" for none).
func (l *lab) sslRow() string {
	l.t.Helper()
	return strings.Trim(l.get("open_vswitch", ".", "ssl"), "[]")
}

func TestSSLController(t *testing.T) {
	l := newLab(t)
	p := newPKI(t, l.ovs.Dir)
	ln := ovsruntest.ListenTCP(t, l.ovs.NetNS, "127.0.0.1:0")
	t.Cleanup(func() { ln.Close() })
	switches := tlsSwitches(ln, p)

	tp := topo(topology.ModeController)
	tp.Controller = "ssl:" + ln.Addr().String()
	h := tp.Host("host1")
	l.vethPair("hxvm1")

	// Without the files, Plan names the missing options.
	_, err := l.tryPlan(tp, h, PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "controller target "+tp.Controller+" needs TLS files: missing --private-key, --certificate, --ca-cert") {
		t.Fatalf("Plan of an ssl: target without files: %v", err)
	}
	_, err = l.tryPlan(tp, h, PlanOptions{SSL: &SSLFiles{PrivateKey: p.switchFiles.PrivateKey}})
	if err == nil || !strings.Contains(err.Error(), "missing --certificate, --ca-cert") {
		t.Fatalf("Plan of an ssl: target with a key only: %v", err)
	}
	wantEqual(t, "bridges after failed plans", l.vsctl("list-br"), "")

	files := p.switchFiles
	opts := PlanOptions{SSL: &files}
	plan := l.reconcileWith(tp, h, opts)
	limits := "(controller_rate_limit=1000/s controller_burst_limit=250 inactivity_probe=5000ms)"
	sslLine := fmt.Sprintf("(private_key=%s certificate=%s ca_cert=%s)", files.PrivateKey, files.Certificate, files.CACert)
	if !slices.Contains(plan.Changes, "+ controller br-int "+tp.Controller+" "+limits) ||
		!slices.Contains(plan.Changes, "+ controller br-tun "+tp.Controller+" "+limits) ||
		plan.Changes[len(plan.Changes)-1] != "+ ssl "+sslLine {
		t.Errorf("changes = %q", plan.Changes)
	}
	wantChanges(t, l.planOnlyWith(tp, h, opts))

	// Open_vSwitch.ssl points at our row, holding the three paths.
	ssl := l.sslRow()
	if ssl == "" {
		t.Fatal("Open_vSwitch.ssl is empty")
	}
	wantEqual(t, "ssl private_key", l.get("ssl", ssl, "private_key"), `"`+files.PrivateKey+`"`)
	wantEqual(t, "ssl certificate", l.get("ssl", ssl, "certificate"), `"`+files.Certificate+`"`)
	wantEqual(t, "ssl ca_cert", l.get("ssl", ssl, "ca_cert"), `"`+files.CACert+`"`)
	wantEqual(t, "ssl marks", l.get("ssl", ssl, "external_ids"), `{ovs-vxctl-host=host1, ovs-vxctl-owner=hxtest}`)
	if got := l.vsctl("get-ssl"); !strings.Contains(got, "Private key: "+files.PrivateKey) ||
		!strings.Contains(got, "Certificate: "+files.Certificate) || !strings.Contains(got, "CA Certificate: "+files.CACert) {
		t.Errorf("get-ssl = %s", got)
	}

	// Both bridges reach the TLS controller with the switch's certificate,
	// each under its own datapath ID.
	var got []string
	deadline := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case s := <-switches:
			if !strings.HasPrefix(s, "dpid=") {
				t.Fatalf("switch connection: %s", s)
			}
			got = append(got, s)
		case <-deadline:
			t.Fatalf("after 30s, %d TLS switch connections (%q), want 2", len(got), got)
		}
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("dpid=%016x cn=host1", topology.BridgeDatapathID("hxtest", "host1", topology.BridgeInt)),
		fmt.Sprintf("dpid=%016x cn=host1", topology.DatapathID("hxtest", "host1")),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("TLS switch connections = %q, want %q", got, want)
	}

	// Another CA file is updated in place.
	ca2 := filepath.Join(l.ovs.Dir, "ca2.pem")
	ovsruntest.Run(t, "", "cp", files.CACert, ca2)
	files2 := files
	files2.CACert = ca2
	plan = l.reconcileWith(tp, h, PlanOptions{SSL: &files2})
	wantChanges(t, plan, "~ ssl ca_cert "+files.CACert+" -> "+ca2)
	wantEqual(t, "ssl row", l.sslRow(), ssl)
	wantEqual(t, "ssl ca_cert", l.get("ssl", ssl, "ca_cert"), `"`+ca2+`"`)

	// A tcp: target needs no SSL row: ours goes, the files are noted as unused.
	tcp := "tcp:127.0.0.1:6653"
	old := tp.Controller
	tp.Controller = tcp
	plan = l.reconcileWith(tp, h, PlanOptions{SSL: &files2})
	wantChanges(t, plan,
		"~ controller br-int target "+old+" -> "+tcp,
		"~ controller br-tun target "+old+" -> "+tcp,
		fmt.Sprintf("- ssl (private_key=%s certificate=%s ca_cert=%s)", files.PrivateKey, files.Certificate, ca2),
	)
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "TLS files given but not used") {
		t.Errorf("notes = %q", plan.Notes)
	}
	wantEqual(t, "Open_vSwitch.ssl", l.sslRow(), "")
	wantEqual(t, "ssl rows", l.vsctl("list", "ssl"), "")

	// Back to ssl:, then destroy removes the SSL row with the rest.
	tp.Controller = old
	plan = l.reconcileWith(tp, h, opts)
	wantChanges(t, plan,
		"~ controller br-int target "+tcp+" -> "+old,
		"~ controller br-tun target "+tcp+" -> "+old,
		"+ ssl "+sslLine,
	)
	plan, err = l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Changes); n == 0 || plan.Changes[n-1] != "- ssl "+sslLine {
		t.Errorf("destroy changes = %q", plan.Changes)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "list-br", l.vsctl("list-br"), "")
	wantEqual(t, "Open_vSwitch.ssl", l.sslRow(), "")
	for _, table := range []string{"ssl", "controller"} {
		wantEqual(t, table+" rows", l.vsctl("list", table), "")
	}
	again, err := l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, again)
}

func TestForeignSSLIsNeverTouched(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeController)
	tp.Controller = "ssl:127.0.0.1:6653"
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	files := SSLFiles{PrivateKey: "/etc/hy/key.pem", Certificate: "/etc/hy/cert.pem", CACert: "/etc/hy/ca.pem"}
	opts := PlanOptions{SSL: &files}

	// Someone configures SSL between our plan and its apply: the
	// transaction fails and changes nothing.
	plan := l.planOnlyWith(tp, h, opts)
	l.vsctl("set-ssl", "/etc/other/key.pem", "/etc/other/cert.pem", "/etc/other/ca.pem")
	before := l.vsctl("show") + l.vsctl("list", "ssl")
	err := l.c.Apply(l.ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "Open_vSwitch.ssl was changed by someone else after the plan was made") {
		t.Fatalf("Apply after a racing set-ssl: %v", err)
	}
	wantEqual(t, "database", l.vsctl("show")+l.vsctl("list", "ssl"), before)

	// Planning now fails clearly, before anything is written.
	_, err = l.tryPlan(tp, h, opts)
	if err == nil || !strings.Contains(err.Error(),
		"Open_vSwitch.ssl already points at an SSL row (private_key=/etc/other/key.pem certificate=/etc/other/cert.pem ca_cert=/etc/other/ca.pem) and it was not created by ovs-vxctl") {
		t.Fatalf("Plan over a foreign SSL row: %v", err)
	}
	wantEqual(t, "database", l.vsctl("show")+l.vsctl("list", "ssl"), before)

	// Hosts that need no SSL leave it alone, and so does destroy.
	tp.Controller = "tcp:127.0.0.1:6653"
	foreign := l.sslRow()
	plan = l.reconcileWith(tp, h, PlanOptions{})
	for _, c := range plan.Changes {
		if strings.Contains(c, "ssl") {
			t.Errorf("plan over a foreign SSL row touches it: %q", c)
		}
	}
	plan, err = l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "foreign ssl row", l.sslRow(), foreign)
	wantEqual(t, "foreign private_key", l.get("ssl", foreign, "private_key"), `"/etc/other/key.pem"`)

	// Another topology's SSL row is not ours either.
	l.vsctl("del-ssl")
	other := topo(topology.ModeController)
	other.Name = "other"
	other.Controller = "ssl:127.0.0.1:6653"
	l.reconcileWith(other, other.Host("host1"), opts)
	// Drop other's bridges by hand, so that only its SSL row stands in
	// our way.
	l.vsctl("del-br", "br-int", "--", "del-br", "br-tun")
	tp.Controller = "ssl:127.0.0.1:6653"
	_, err = l.tryPlan(tp, h, opts)
	if err == nil || !strings.Contains(err.Error(), `Open_vSwitch.ssl already points at an SSL row (private_key=/etc/hy/key.pem certificate=/etc/hy/cert.pem ca_cert=/etc/hy/ca.pem) and it belongs to topology "other" host "host1"`) {
		t.Fatalf("Plan over another topology's SSL row: %v", err)
	}
}
