package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// dialTimeout bounds each socket probe of the preflight: a listening unix
// socket answers at once.
const dialTimeout = 2 * time.Second

// preflight checks, before anything changes, that apply can finish what it
// starts: the management socket of every bridge it programs (for bridges it
// creates, which have none yet, a live ovs-vswitchd in RunDir) and the ip
// command. Without it, a wrong OVS_RUNDIR left OVSDB committed and the
// flows missing.
func (o Options) preflight(newBridges, programmed []string) error {
	var errs []error
	if _, err := exec.LookPath("ip"); err != nil {
		errs = append(errs, fmt.Errorf("the ip command (iproute2), which apply needs for addresses and routes: %w", err))
	}
	if o.RunDir == "" {
		errs = append(errs, errors.New("no OVS run directory given: set OVS_RUNDIR to the directory of ovs-vswitchd's sockets"))
		return errors.Join(errs...)
	}
	var sockErrs []error
	for _, br := range programmed {
		if slices.Contains(newBridges, br) {
			continue
		}
		sock := filepath.Join(o.RunDir, br+".mgmt")
		if err := dialUnix(sock); err != nil {
			sockErrs = append(sockErrs, fmt.Errorf("bridge %s's management socket %s: %w", br, sock, err))
		}
	}
	if len(newBridges) > 0 {
		if err := vswitchdReachable(o.RunDir); err != nil {
			sockErrs = append(sockErrs, fmt.Errorf("creating %s needs ovs-vswitchd: %w", strings.Join(newBridges, " and "), err))
		}
	}
	if len(sockErrs) > 0 {
		errs = append(errs, fmt.Errorf("%w: set OVS_RUNDIR (now %s) to the run directory of the ovs-vswitchd that serves the OVSDB at --db %s, or --db to the database of the ovs-vswitchd in %s",
			errors.Join(sockErrs...), o.RunDir, o.DB, o.RunDir))
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing was changed: %w", errors.Join(errs...))
	}
	return nil
}

// dialUnix checks that something listens on the unix socket at path.
func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, dialTimeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// vswitchdReachable checks that an ovs-vswitchd answers on a control socket
// (ovs-vswitchd.<pid>.ctl) in runDir: the bridges it creates get their
// management sockets there.
func vswitchdReachable(runDir string) error {
	ctls, err := filepath.Glob(filepath.Join(runDir, "ovs-vswitchd.*.ctl"))
	if err != nil {
		return fmt.Errorf("looking for ovs-vswitchd's control socket in %s: %w", runDir, err)
	}
	var errs []error
	for _, c := range ctls {
		err := dialUnix(c)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return fmt.Errorf("no ovs-vswitchd control socket (ovs-vswitchd.<pid>.ctl) in %s: is ovs-vswitchd running with this run directory?", runDir)
	}
	return fmt.Errorf("no ovs-vswitchd answers in %s: %w", runDir, errors.Join(errs...))
}

// checkInterfaces refuses, before anything changes, every interface apply
// would take that is not the OVS port it should be: a vm port's existing
// interface that carries addresses, is the VTEP's device, is the loopback
// or belongs to another bridge or bond; an internal port (or bridge) whose
// name a kernel interface that is not ovs-vxctl's holds. vteps maps a device
// to why it is the VTEP's. A vm interface that does not exist yet is only a
// warning: OVS attaches it when it appears, as it does libvirt's taps.
func checkInterfaces(ifs []ovsdb.HostInterface, links map[string]hostnet.Link, vteps func() map[string]string) (warnings []string, err error) {
	var errs []error
	for _, i := range ifs {
		l, exists := links[i.Name]
		switch {
		case i.Kind == ovsdb.IfaceVM && !exists:
			warnings = append(warnings, missingVM(i.Name))
		case i.Kind == ovsdb.IfaceVM && !i.Owned:
			if why := vmRefusal(l, links, vteps); len(why) > 0 {
				errs = append(errs, fmt.Errorf("vm port %s: refusing to attach interface %s to %s: %s",
					i.Name, l.Describe(), i.Bridge, strings.Join(why, "; ")))
			}
		case (i.Kind == ovsdb.IfaceInternal || i.Kind == ovsdb.IfaceLocal) && exists && !ownInternal(i):
			what := "internal port " + i.Name
			if i.Kind == ovsdb.IfaceLocal {
				what = "bridge " + i.Name
			}
			errs = append(errs, fmt.Errorf("%s: refusing to create it: the name is held by interface %s, which is not an OVS internal port of ovs-vxctl's (OVS could not create the port, and apply would change that interface's addresses)",
				what, l.Describe()))
		}
	}
	return warnings, errors.Join(errs...)
}

// vmRefusal lists why kernel interface l must not become a vm port.
func vmRefusal(l hostnet.Link, links map[string]hostnet.Link, vteps func() map[string]string) []string {
	var why []string
	if l.Loopback {
		why = append(why, "it is the loopback interface")
	}
	if len(l.Addrs) > 0 {
		why = append(why, "it carries IP addresses, which attaching it would cut off")
	}
	if v := vteps()[l.Name]; v != "" {
		why = append(why, "it is the VTEP's device ("+v+")")
	}
	if l.Master != "" {
		kind := links[l.Master].Kind
		if kind == "" {
			kind = "device"
		}
		why = append(why, fmt.Sprintf("it already belongs to %s %s", kind, l.Master))
	}
	return why
}

// ownInternal reports whether i is an internal port of ovs-vxctl's that
// ovs-vswitchd attached: then the kernel interface of its name is OVS's.
func ownInternal(i ovsdb.HostInterface) bool {
	return i.Type == "internal" && i.Attached()
}

// missingVM is the warning for a vm port whose interface does not exist.
func missingVM(name string) string {
	return fmt.Sprintf("vm port %s: interface %s does not exist yet: OVS attaches it to %s when it appears",
		name, name, topology.BridgeInt)
}

// vtepDevices maps the interfaces that carry the host's VXLAN underlay to
// why: the one holding its VTEP address, and those the routes to its peers
// go through.
func vtepDevices(ctx context.Context, t *topology.Topology, h *topology.Host, links map[string]hostnet.Link) map[string]string {
	out := map[string]string{}
	if l, ok := hostnet.HoldsAddr(links, h.VTEP); ok {
		out[l.Name] = "it holds the host's VTEP address " + h.VTEP.String()
	}
	for _, peer := range t.Peers(h) {
		if dev, ok := hostnet.RouteDevice(ctx, peer.VTEP); ok && out[dev] == "" {
			out[dev] = fmt.Sprintf("the underlay route to peer %s's VTEP %s goes through it", peer.Name, peer.VTEP)
		}
	}
	return out
}

// checkAttached reads, after the transaction, what ovs-vswitchd made of
// every interface of ours: an error is an apply failure naming the port and
// OVS's message, except for a vm port whose interface does not exist (yet),
// which is a warning.
func checkAttached(ifs []ovsdb.HostInterface, links map[string]hostnet.Link) (warnings []string, err error) {
	var errs []error
	for _, i := range ifs {
		switch {
		case i.Kind == ovsdb.IfaceVM && links[i.Name].Name == "":
			warnings = append(warnings, missingVM(i.Name))
		case !i.Owned:
			errs = append(errs, fmt.Errorf("port %s is missing from %s after the transaction", i.Name, i.Bridge))
		case i.Error != "":
			errs = append(errs, fmt.Errorf("port %s: OVS could not attach interface %s: %s", i.Name, i.Name, i.Error))
		case i.OFPort < 0:
			// ovs-vswitchd leaves error empty for some failures (a port
			// named like its own datapath device): its log says why.
			errs = append(errs, fmt.Errorf("port %s: OVS could not attach interface %s (ofport -1, no error given: see ovs-vswitchd.log)", i.Name, i.Name))
		case i.OFPort == 0:
			warnings = append(warnings, fmt.Sprintf("port %s: ovs-vswitchd has not attached interface %s yet", i.Name, i.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return warnings, fmt.Errorf("OVSDB changes committed, but: %w", err)
	}
	return warnings, nil
}

// ownedInternalPorts are the internal ports whose addresses apply may set.
func ownedInternalPorts(ifs []ovsdb.HostInterface) hostnet.Owned {
	owned := hostnet.Owned{}
	for _, i := range ifs {
		if i.Kind == ovsdb.IfaceInternal && ownInternal(i) {
			owned[i.Name] = true
		}
	}
	return owned
}

// pendingInternalPorts are the internal ports apply creates (or OVS has not
// attached): a dry run plans their addresses as if they were fresh.
func pendingInternalPorts(ifs []ovsdb.HostInterface) hostnet.Owned {
	pending := hostnet.Owned{}
	for _, i := range ifs {
		if i.Kind == ovsdb.IfaceInternal && !ownInternal(i) {
			pending[i.Name] = true
		}
	}
	return pending
}
