package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// Verbs that act on a hardware VTEP (a host with hardware_vtep) through
// its switch's hardware_vtep database instead of a local OVS.
const (
	hwApply   = "apply"
	hwDestroy = "destroy"
	hwShow    = "show"
)

// hardwareVTEP runs verb for a hardware-VTEP host and reports handled =
// true; for any other host (or without -f) it does nothing and reports
// false, and the caller goes on with the OVS host path. files are the TLS
// files given to apply, for an ssl: database target.
func (g *globalOptions) hardwareVTEP(cmd *cobra.Command, verb string, dryRun bool, files *ovsdb.SSLFiles) (handled bool, err error) {
	if g.file == "" {
		return false, nil
	}
	t, err := g.loadTopology()
	if err != nil {
		return false, nil // the OVS host path reports it
	}
	h, err := g.resolveHost(t)
	if err != nil || !h.IsHardwareVTEP() {
		return false, nil
	}
	log := g.logger()
	defer log.Sync()
	ctx, cancel := g.context()
	defer cancel()
	o := hwvtep.Options{Topology: t, Host: h, DryRun: dryRun, Log: log}
	if strings.HasPrefix(h.HardwareVTEP.OVSDB, "ssl:") && files != nil && *files != (ovsdb.SSLFiles{}) {
		if o.TLS, err = clientTLS(*files); err != nil {
			return true, err
		}
	}
	out := cmd.OutOrStdout()
	switch verb {
	case hwShow:
		st, err := hwvtep.Show(ctx, o)
		if err != nil {
			return true, fmt.Errorf("show: hardware VTEP %s: %w", h.Name, err)
		}
		if g.format == "json" {
			return true, writeJSON(out, st)
		}
		return true, printHardwareVTEP(out, st)
	case hwDestroy:
		rep, err := hwvtep.Destroy(ctx, o)
		if err != nil {
			return true, fmt.Errorf("destroying topology %s on hardware VTEP %s: %w", t.Name, h.Name, err)
		}
		return true, printHardwareReport(out, g.format, h.Name, dryRun, rep)
	default:
		rep, err := hwvtep.Apply(ctx, o)
		if err != nil {
			return true, fmt.Errorf("applying %s to hardware VTEP %s: %w", g.file, h.Name, err)
		}
		return true, printHardwareReport(out, g.format, h.Name, dryRun, rep)
	}
}

// printHardwareReport prints what apply or destroy changed (or would
// change) in a hardware VTEP's database.
func printHardwareReport(w io.Writer, format, host string, dry bool, rep *hwvtep.Report) error {
	if format == "json" {
		return writeJSON(w, map[string]any{"host": host, "dry_run": dry, "changed": rep.Changed(),
			"hardware_vtep": nonNil(rep.Changes), "notes": nonNil(rep.Notes), "duration_ms": rep.Duration.Milliseconds()})
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:   "+n)
	}
	if !rep.Changed() {
		fmt.Fprintf(w, "host %s: nothing to change\n", host)
		return nil
	}
	for _, c := range rep.Changes {
		fmt.Fprintln(w, "hwvtep: "+c)
	}
	verb := "changed"
	if dry {
		verb = "would change"
	}
	fmt.Fprintf(w, "host %s: %s %d hardware_vtep rows in %s\n", host, verb, len(rep.Changes), rep.Duration.Round(1e6))
	return nil
}

// printHardwareVTEP prints show's table form for a hardware VTEP: the
// physical switch, then per logical switch its bindings, the flood list it
// was told, and the MACs it learned (local) and was told (remote).
func printHardwareVTEP(out io.Writer, st *hwvtep.State) error {
	w := newTable(out)
	fmt.Fprintf(w, "topology %s, hardware VTEP %s: physical switch %s (%s), tunnel_ips %s\nports: %s\n\nLOGICAL SWITCHES\n",
		st.Topology, st.Host, st.PhysicalSwitch, orDash(st.Description), orDash(strings.Join(st.TunnelIPs, ", ")), orDash(strings.Join(st.Ports, ", ")))
	fmt.Fprintf(w, "  NAME\tOURS\tTUNNEL_KEY\tREPLICATION\tBINDINGS\tFLOOD (unknown-dst)\n")
	for _, s := range st.Switches {
		fmt.Fprintf(w, "  %s\t%v\t%d\t%s\t%s\t%s\n", s.Name, s.Ours, s.TunnelKey, s.ReplicationMode,
			orDash(strings.Join(s.Bindings, ", ")), orDash(strings.Join(s.Flood, ", ")))
	}
	fmt.Fprintf(w, "\nMACS\n  LOGICAL SWITCH\tORIGIN\tMAC\tIP\tLOCATOR\n")
	for _, s := range st.Switches {
		for _, m := range s.LocalMACs {
			fmt.Fprintf(w, "  %s\tlearned (local)\t%s\t%s\t%s\n", s.Name, m.MAC, orDash(m.IP), m.Locator)
		}
		for _, m := range s.RemoteMACs {
			fmt.Fprintf(w, "  %s\ttold (remote)\t%s\t%s\t%s\n", s.Name, m.MAC, orDash(m.IP), m.Locator)
		}
	}
	return w.Flush()
}

// clientTLS loads the client side of an ssl: connection to a hardware
// VTEP's database. Like OVS, it checks that the switch's certificate is
// signed by the CA, not which name it carries (switches are reached by
// address and ovs-pki names certificates after the switch).
func clientTLS(f ovsdb.SSLFiles) (*tls.Config, error) {
	if f.PrivateKey == "" || f.Certificate == "" || f.CACert == "" {
		return nil, errors.New("an ssl: hardware VTEP database needs --private-key, --certificate and --ca-cert")
	}
	cert, err := tls.LoadX509KeyPair(f.Certificate, f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("loading the certificate %s and private key %s: %w", f.Certificate, f.PrivateKey, err)
	}
	pem, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", f.CACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// The chain is verified below, without the host name check.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		},
	}, nil
}

// verifyChain checks that the first certificate of raw chains to a CA of
// pool, through the others.
func verifyChain(raw [][]byte, pool *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("the switch sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("parsing the switch's certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the switch's certificate is not signed by the CA: %w", err)
	}
	return nil
}
