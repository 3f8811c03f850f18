package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// A hardware VTEP (a host with hardware_vtep) is built with OVS's VTEP
// emulator, ovs-vtep: in the host's namespace, one ovsdb-server serves both
// the Open_vSwitch and the hardware_vtep databases (on db.sock, where
// ovs-vtep and vtep-ctl look, and on the host's hardware_vtep.ovsdb target),
// ovs-vswitchd runs the userspace datapath with br-phy holding the VTEP
// address (as on a managed host: userspace tunnels route through it), and
// an OVS bridge named like the physical switch holds the physical ports:
// veths whose other ends are the servers' eth0 in their namespaces. Apply
// then configures the switch through the hardware_vtep database only, as it
// would a real top-of-rack switch.

// emulatorBridgeSuffix is what ovs-vtep appends to the physical switch's
// name for the bridge of each logical switch ("<ps>_vtep_ls<N>"); the
// userspace datapath gives that bridge a tap device, whose name must fit
// the kernel's 15 characters.
const emulatorBridgeSuffix = "_vtep_ls"

// ovsdbRemote is the passive OVSDB remote that serves hardware VTEP h's
// ovsdb target inside its namespace, and the address the lab must add there
// for it ("" when none).
func ovsdbRemote(h *topology.Host) (remote string, addr netip.Addr, err error) {
	target := h.HardwareVTEP.OVSDB
	scheme, rest, _ := strings.Cut(target, ":")
	switch scheme {
	case "unix":
		if !filepath.IsAbs(rest) {
			return "", addr, fmt.Errorf("hardware VTEP %s: the lab needs an absolute socket path in %s", h.Name, target)
		}
		return "punix:" + rest, addr, nil
	case "tcp":
		ap, err := netip.ParseAddrPort(rest)
		if err != nil {
			return "", addr, fmt.Errorf("hardware VTEP %s: ovsdb target %s: %w", h.Name, target, err)
		}
		if ap.Addr() != h.VTEP {
			addr = ap.Addr()
		}
		return fmt.Sprintf("ptcp:%d:%s", ap.Port(), ap.Addr()), addr, nil
	}
	return "", addr, fmt.Errorf("hardware VTEP %s: the lab serves its database on tcp: or unix: only, not %s", h.Name, target)
}

// planHardwareVTEP checks what the emulator needs of hardware VTEP hp.
func planHardwareVTEP(t *topology.Topology, hp *hostPlan, ifs map[string]string) error {
	h := hp.h
	if _, _, err := ovsdbRemote(h); err != nil {
		return err
	}
	ps := h.HardwareVTEP.PhysicalSwitch
	longest := ps + emulatorBridgeSuffix + fmt.Sprint(len(t.NetworksOn(h)))
	if !nameRE.MatchString(ps) || len(longest) > 15 {
		return fmt.Errorf("hardware VTEP %s: the emulator names a bridge %s after physical switch %q, which must be lowercase letters, digits and '-' and fit 15 characters",
			h.Name, longest, ps)
	}
	if prev, ok := ifs[ps]; ok || reservedIfs[ps] {
		return fmt.Errorf("hardware VTEP %s: physical switch %s would be a bridge of the same name as %s", h.Name, ps, orReserved(prev))
	}
	for _, vm := range hp.vms {
		if vm.port.VLAN == 0 {
			continue
		}
		server, trunk, br := accessNames(vm.port.Name)
		for _, name := range []string{server, trunk, br} {
			if len(name) > 15 {
				return fmt.Errorf("port %s/%s: the lab's access switch for VLAN %d needs the interface name %s, longer than 15 characters",
					h.Name, vm.port.Name, vm.port.VLAN, name)
			}
			if prev, ok := ifs[name]; ok || reservedIfs[name] {
				return fmt.Errorf("port %s/%s: the lab's access switch for VLAN %d needs the interface name %s, already used by %s",
					h.Name, vm.port.Name, vm.port.VLAN, name, orReserved(prev))
			}
			ifs[name] = "the access switch of port " + vm.port.Name
		}
	}
	return nil
}

func orReserved(prev string) string {
	if prev == "" {
		return "one the lab uses"
	}
	return prev
}

// buildHardwareVTEP builds hardware VTEP hp: its links and servers while
// its OVS starts, then br-phy, the physical switch and ovs-vtep.
func (p *plan) buildHardwareVTEP(ctx context.Context, hp *hostPlan, ht *HostTime) error {
	inst := HostInstance(p.o, hp.h.Name)
	var ovsErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.Now()
		ovsErr = inst.StartVTEP(ctx)
		ht.OVSStart = time.Since(t)
	}()
	linkErr := p.buildLinks(ctx, hp)
	wg.Wait()
	if err := errors.Join(linkErr, ovsErr); err != nil {
		return err
	}
	if _, err := inst.Vsctl(ctx,
		"add-br", PhyBridge,
		"--", "set", "Bridge", PhyBridge, "datapath_type=netdev", "external_ids:"+MarkKey+"="+p.o.Topology.Name,
		"--", "set", "Interface", PhyBridge, fmt.Sprintf("mtu_request=%d", UnderlayMTU),
		"--", "add-port", PhyBridge, UnderlayIf); err != nil {
		return fmt.Errorf("creating %s: %w", PhyBridge, err)
	}
	remote, extra, _ := ovsdbRemote(hp.h)
	lines := p.vtepLines(hp, PhyBridge)
	if extra.IsValid() {
		lines = append(lines, fmt.Sprintf("addr add %s/%d dev lo", extra, hostBits(extra)))
	}
	if err := ipBatch(ctx, hp.ns, lines); err != nil {
		return fmt.Errorf("addressing the VTEP: %w", err)
	}
	if err := txOff(ctx, hp.ns, UnderlayIf); err != nil {
		return err
	}
	if err := p.accessSwitches(ctx, inst, hp); err != nil {
		return err
	}
	// The address exists now: serve the hardware_vtep database on it.
	if _, err := inst.Run(ctx, "ovs-appctl", "-t", filepath.Join(inst.Dir, "ovsdb-server.ctl"), "ovsdb-server/add-remote", remote); err != nil {
		return fmt.Errorf("serving the hardware_vtep database on %s: %w", remote, err)
	}
	if err := p.physicalSwitch(ctx, inst, hp); err != nil {
		return err
	}
	return waitOVSRoutes(ctx, inst, hp.others)
}

// physicalSwitch creates the physical switch's bridge with its ports, its
// Physical_Switch row (tunnel_ips = the VTEP) and starts ovs-vtep for it.
func (p *plan) physicalSwitch(ctx context.Context, inst *ovsrun.Instance, hp *hostPlan) error {
	ps := hp.h.HardwareVTEP.PhysicalSwitch
	args := []string{"add-br", ps, "--", "set", "Bridge", ps, "datapath_type=netdev", "external_ids:" + MarkKey + "=" + p.o.Topology.Name}
	vtep := [][]string{{"add-ps", ps}, {"set", "Physical_Switch", ps, "tunnel_ips=" + hp.h.VTEP.String()}}
	for _, vm := range hp.vms {
		args = append(args, "--", "add-port", ps, vm.port.Name)
		vtep = append(vtep, []string{"add-port", ps, vm.port.Name})
	}
	if _, err := inst.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("creating the physical switch's bridge %s: %w", ps, err)
	}
	for _, a := range vtep {
		if _, err := inst.Vtepctl(ctx, a...); err != nil {
			return fmt.Errorf("creating physical switch %s: %w", ps, err)
		}
	}
	if err := inst.StartVTEPEmulator(ctx, ps); err != nil {
		return err
	}
	p.o.logger().Debug("VTEP emulator started", zap.String("host", hp.h.Name), zap.String("physical_switch", ps))
	return nil
}

// accessSwitches puts an access switch in front of every physical port
// bound with a VLAN (vlan != 0): the server's veth end, renamed s-<port>,
// is an access port of VLAN v on OVS bridge sw-<port>, whose trunk t-<port>
// is wired by a veth to the physical port <port> of the physical switch, so
// the switch sees the server's frames tagged as the binding says. (This
// kernel has neither VLAN devices nor VLAN-filtering bridges, and a tagged
// NIC is what an access switch stands for anyway.)
func (p *plan) accessSwitches(ctx context.Context, inst *ovsrun.Instance, hp *hostPlan) error {
	for _, vm := range hp.vms {
		v, port := vm.port.VLAN, vm.port.Name
		if v == 0 {
			continue
		}
		server, trunk, br := accessNames(port)
		mtu := VMMTUOf(vm.port)
		if err := ipBatch(ctx, hp.ns, []string{
			"link set dev " + port + " down",
			fmt.Sprintf("link set dev %s name %s", port, server),
			"link set dev " + server + " up",
			fmt.Sprintf("link add name %s mtu %d type veth peer name %s mtu %d", port, mtu, trunk, mtu),
			"link set dev " + port + " up",
			"link set dev " + trunk + " up",
		}); err != nil {
			return fmt.Errorf("server %s: wiring its access switch: %w", port, err)
		}
		if _, err := inst.Vsctl(ctx, "add-br", br,
			"--", "set", "Bridge", br, "datapath_type=netdev", "external_ids:"+MarkKey+"="+p.o.Topology.Name,
			"--", "add-port", br, server, fmt.Sprintf("tag=%d", v),
			"--", "add-port", br, trunk, fmt.Sprintf("trunks=%d", v)); err != nil {
			return fmt.Errorf("server %s: creating its access switch %s: %w", port, br, err)
		}
	}
	return nil
}

// accessNames are the server-side veth end, the trunk veth end and the OVS
// bridge of the access switch in front of physical port port.
func accessNames(port string) (server, trunk, bridge string) {
	return "s-" + port, "t-" + port, "sw-" + port
}

// applyHardwareVTEPs runs `ovs-vxctl apply` for every hardware VTEP, inside
// its namespace (where its database's address is), recording the time.
func (p *plan) applyHardwareVTEPs(ctx context.Context, rep *Report) error {
	var errs []error
	for i, hp := range p.hosts {
		if !hp.h.IsHardwareVTEP() {
			continue
		}
		t := time.Now()
		if err := p.apply(ctx, hp); err != nil {
			errs = append(errs, fmt.Errorf("hardware VTEP %s: %w", hp.h.Name, err))
		}
		rep.Hosts[i].Apply = time.Since(t)
	}
	return errors.Join(errs...)
}
