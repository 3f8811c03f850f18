package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
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
	if o.TLS, err = hardwareTLS(h, files); err != nil {
		return true, err
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
		st.Topology, st.Host, clean(st.PhysicalSwitch), clean(orDash(st.Description)), cleanList(st.TunnelIPs), cleanList(st.Ports))
	fmt.Fprintf(w, "  NAME\tOURS\tTUNNEL_KEY\tREPLICATION\tBINDINGS\tFLOOD (unknown-dst)\n")
	for _, s := range st.Switches {
		fmt.Fprintf(w, "  %s\t%v\t%d\t%s\t%s\t%s\n", clean(s.Name), s.Ours, s.TunnelKey, clean(s.ReplicationMode),
			cleanList(s.Bindings), cleanList(s.Flood))
	}
	fmt.Fprintf(w, "\nMACS\n  LOGICAL SWITCH\tORIGIN\tMAC\tIP\tLOCATOR\n")
	for _, s := range st.Switches {
		for _, m := range s.LocalMACs {
			fmt.Fprintf(w, "  %s\tlearned (local)\t%s\t%s\t%s\n", clean(s.Name), clean(m.MAC), clean(orDash(m.IP)), clean(m.Locator))
		}
		for _, m := range s.RemoteMACs {
			fmt.Fprintf(w, "  %s\ttold (remote)\t%s\t%s\t%s\n", clean(s.Name), clean(m.MAC), clean(orDash(m.IP)), clean(m.Locator))
		}
	}
	return w.Flush()
}

// hardwareTLSFlags adds --private-key, --certificate and --ca-cert to a
// verb that reaches a hardware VTEP's database (as apply has them) and
// returns where they go.
func hardwareTLSFlags(cmd *cobra.Command) *ovsdb.SSLFiles {
	f := &ovsdb.SSLFiles{}
	cmd.Flags().StringVar(&f.PrivateKey, "private-key", "", "this client's private key, for an ssl: hardware_vtep.ovsdb")
	cmd.Flags().StringVar(&f.Certificate, "certificate", "", "this client's certificate, for an ssl: hardware_vtep.ovsdb")
	cmd.Flags().StringVar(&f.CACert, "ca-cert", "", "CA certificate that signed the hardware VTEP database's certificate")
	return f
}

// hardwareTLS is the client side of host h's hardware_vtep.ovsdb when it is
// ssl: and files were given; nil otherwise, and then hwvtep.Connect refuses
// an ssl: target naming the three flags.
func hardwareTLS(h *topology.Host, files *ovsdb.SSLFiles) (*tls.Config, error) {
	if !strings.HasPrefix(h.HardwareVTEP.OVSDB, "ssl:") || files == nil || *files == (ovsdb.SSLFiles{}) {
		return nil, nil
	}
	return clientTLS(*files)
}

// cleanList is a list of the switch's strings for a table, each clean.
func cleanList(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = clean(s)
	}
	return orDash(strings.Join(out, ", "))
}

// clientTLS loads the client side of an ssl: connection to a hardware
// VTEP's database (ovsdb.ClientTLS: the chain is checked, not the name).
func clientTLS(f ovsdb.SSLFiles) (*tls.Config, error) {
	if !f.Complete() {
		return nil, errors.New("an ssl: hardware VTEP database needs --private-key, --certificate and --ca-cert")
	}
	return ovsdb.ClientTLS(f)
}
