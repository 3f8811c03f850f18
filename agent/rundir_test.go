package agent

import (
	"strings"
	"testing"
)

// A wrong OVS_RUNDIR used to leave a half-applied host: OVSDB committed,
// flows missing. Now apply fails before the transaction, saying what to set.
func TestApplyWithWrongRunDirChangesNothing(t *testing.T) {
	h := newHost(t)
	bad := t.TempDir()

	o := h.options(twoHosts(vmPort("vnet1")))
	o.RunDir = bad
	h.refused(o, "ovs-vswitchd", bad, "OVS_RUNDIR", "--db "+h.ovs.DBEndpoint(), "nothing was changed")
	if brs := h.vsctl("list-br"); brs != "" {
		t.Fatalf("bridges created by a failed apply: %s", brs)
	}

	// Bridges that exist: their management sockets are not in bad.
	h.mustApply(h.options(twoHosts(vmPort("vnet1"))))
	o = h.options(twoHosts(vmPort("vnet1"), vmPort("vnet2")))
	o.RunDir = bad
	h.refused(o, "br-int's management socket", "br-tun's management socket", "OVS_RUNDIR")
	if ports := h.vsctl("list-ports", "br-int"); strings.Contains(ports, "vnet2") {
		t.Errorf("vnet2 added by a failed apply: %s", ports)
	}

	// The dry run fails the same way rather than promise what cannot be done.
	o.DryRun = true
	if _, err := h.apply(o); err == nil || !strings.Contains(err.Error(), "OVS_RUNDIR") {
		t.Errorf("dry run with a wrong OVS_RUNDIR: %v, want the same error", err)
	}
}
