package topology

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// HardwareVTEP says how to configure a host that is a hardware VTEP (a
// top-of-rack switch, or OVS's VTEP emulator) through the hardware_vtep
// OVSDB schema it serves.
type HardwareVTEP struct {
	// OVSDB is the switch's database: "tcp:IP:PORT", "ssl:IP:PORT" or
	// "unix:PATH".
	OVSDB string
	// PhysicalSwitch is the name of its Physical_Switch row; the host's
	// name unless the file says otherwise.
	PhysicalSwitch string
}

// HardwareVTEPDstPort is the VXLAN UDP port of every hardware VTEP: the
// hardware_vtep schema has no column for another one.
const HardwareVTEPDstPort = 4789

// MaxVLAN is the highest VLAN a hardware VTEP port can bind (4095 is
// reserved by 802.1Q).
const MaxVLAN = 4094

// IsHardwareVTEP reports whether h is configured through the hardware_vtep
// schema rather than being a managed OVS host or a plain unmanaged peer.
func (h *Host) IsHardwareVTEP() bool { return h != nil && h.HardwareVTEP != nil }

// rawHardwareVTEP is the hardware_vtep mapping of a host.
type rawHardwareVTEP struct {
	OVSDB, PhysicalSwitch *yaml.Node
}

// hardwareVTEP resolves host h's hardware_vtep field, if any. Such a host
// is unmanaged (nothing on it runs ovs-vxctl's OVS side), and its VTEP is
// IPv4 on port 4789: the schema's only encapsulation is vxlan_over_ipv4
// and it has no UDP port.
func (p *problems) hardwareVTEP(rh *rawHost, h *Host) {
	if rh.HardwareVTEP == nil {
		return
	}
	path := rh.path + ".hardware_vtep"
	var r rawHardwareVTEP
	if !p.fields(rh.HardwareVTEP, path, map[string]**yaml.Node{"ovsdb": &r.OVSDB, "physical_switch": &r.PhysicalSwitch}) {
		return
	}
	hw := &HardwareVTEP{PhysicalSwitch: h.Name}
	ok := true
	if p.need(r.OVSDB, path+".ovsdb", rh.HardwareVTEP.Line) {
		if v, vok := p.str(r.OVSDB, path+".ovsdb"); vok {
			if t, err := parseOVSDBTarget(v); err != nil {
				p.add(path+".ovsdb", r.OVSDB.Line, "%v", err)
				ok = false
			} else {
				hw.OVSDB = t
			}
		}
	} else {
		ok = false
	}
	if v, vok := p.str(r.PhysicalSwitch, path+".physical_switch"); vok {
		if msg := physicalNameProblem(v); msg != "" {
			p.add(path+".physical_switch", r.PhysicalSwitch.Line, "%s", msg)
			ok = false
		} else {
			hw.PhysicalSwitch = v
		}
	}
	if rh.Managed == nil || h.Managed {
		p.add(rh.path+".managed", lineOf(rh.Managed, rh.HardwareVTEP), "a hardware VTEP is configured through its OVSDB, never as an OVS host: set managed: false")
		ok = false
	}
	if h.VTEP.IsValid() && !h.VTEP.Is4() {
		p.add(rh.path+".vtep", rh.VTEP.Line, "%s is IPv6; the hardware_vtep schema only knows vxlan_over_ipv4", h.VTEP)
		ok = false
	}
	if h.DstPort != HardwareVTEPDstPort {
		p.add(rh.path+".dst_port", lineOf(rh.DstPort, rh.HardwareVTEP), "%d: a hardware VTEP uses UDP port %d (the hardware_vtep schema has no other); set dst_port: %d on this host",
			h.DstPort, HardwareVTEPDstPort, HardwareVTEPDstPort)
		ok = false
	}
	if ok {
		h.HardwareVTEP = hw
	}
}

// parseOVSDBTarget checks a hardware VTEP's OVSDB target and returns it in
// canonical form.
func parseOVSDBTarget(v string) (string, error) {
	if path, ok := strings.CutPrefix(v, "unix:"); ok {
		if path == "" || strings.ContainsFunc(path, unicode.IsControl) {
			return "", fmt.Errorf("want unix:PATH with a socket path, got %q", v)
		}
		return v, nil
	}
	t, err := parseController(v)
	if err != nil {
		return "", fmt.Errorf("want tcp:IP:PORT, ssl:IP:PORT or unix:PATH, got %q", v)
	}
	return t, nil
}

// physicalNameProblem says why v cannot name a physical switch or port of a
// hardware VTEP, or "". Switches name ports their own way ("swp1",
// "Ethernet1/1", "xe-0/0/1"), so only what no OVSDB client could pass on a
// command line is refused.
func physicalNameProblem(v string) string {
	switch {
	case v == "":
		return "must not be empty"
	case !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' || r == '\'' }) >= 0:
		return fmt.Sprintf("%q may not contain spaces, quotes or control characters", v)
	case len(v) > MaxNetworkNameLen:
		return fmt.Sprintf("%q is %d characters long; at most %d are allowed", v, len(v), MaxNetworkNameLen)
	}
	return ""
}

// portNameProblemOn is portNameProblem for a port on host h: a hardware
// VTEP's ports are the switch's physical ports, named by the switch.
func portNameProblemOn(h *Host, v string) string {
	if h.IsHardwareVTEP() {
		return physicalNameProblem(v)
	}
	return portNameProblem(v)
}

// portVLAN resolves a port's vlan: required on a hardware VTEP's ports (the
// VLAN of the physical port bound to the network, 0 for untagged frames),
// meaningless and refused anywhere else.
func (p *problems) portVLAN(rp *rawPort, pt *Port) {
	h := pt.Host
	switch {
	case h == nil:
	case h.IsHardwareVTEP():
		if p.need(rp.VLAN, rp.path+".vlan", rp.line) {
			if v, ok := p.integer(rp.VLAN, rp.path+".vlan", 0, MaxVLAN); ok {
				pt.VLAN = uint16(v)
			}
		}
	case rp.VLAN != nil:
		p.add(rp.path+".vlan", rp.VLAN.Line, "only ports of a hardware VTEP (a host with hardware_vtep) have a vlan; host %s has none", h.Name)
	}
}

// claimPort claims port pt (of network rn) on its host. A port name is
// unique on an OVS host (OVS port names are per switch). A hardware VTEP's
// physical port may carry several networks, one VLAN each: there a
// (port, vlan) pair is unique across networks, and a port appears once in
// a network.
func (p *problems) claimPort(rn *rawNetwork, rp *rawPort, pt *Port, c networkClaims) {
	if pt.Host == nil || pt.Name == "" {
		return
	}
	h := pt.Host
	if !h.IsHardwareVTEP() {
		if other := claim(c.ports, [2]string{h.Name, pt.Name}, rp.path); other != "" {
			p.add(rp.path+".name", rp.Name.Line, "%s is already used on host %s by %s", pt.Name, h.Name, other)
		}
		return
	}
	if other := claim(c.ports, [2]string{h.Name + "\x00" + rn.path, pt.Name}, rp.path); other != "" {
		p.add(rp.path+".name", rp.Name.Line, "%s is already in this network on host %s (%s): one VLAN per port per network", pt.Name, h.Name, other)
		return
	}
	if rp.VLAN == nil {
		return // reported by portVLAN
	}
	key := [2]string{h.Name, fmt.Sprintf("%s\x00%d", pt.Name, pt.VLAN)}
	if other := claim(c.ports, key, rp.path); other != "" {
		p.add(rp.path+".vlan", rp.VLAN.Line, "%s vlan %d on host %s is already bound by %s", pt.Name, pt.VLAN, h.Name, other)
	}
}

// checkHardwareVTEPs checks what involves a hardware VTEP and other hosts:
// two hosts cannot configure one physical switch, and every host sharing a
// network with a hardware VTEP must receive VXLAN on its port 4789 (the
// switch sends there; a managed host's tunnel to it uses 4789 already).
func (p *problems) checkHardwareVTEPs(t *Topology, raw map[*Host]*rawHost) {
	switches := map[[2]string]string{}
	for _, h := range t.Hosts {
		if !h.IsHardwareVTEP() {
			continue
		}
		rh := raw[h]
		key := [2]string{h.HardwareVTEP.OVSDB, h.HardwareVTEP.PhysicalSwitch}
		if other := claim(switches, key, rh.path); other != "" {
			p.add(rh.path+".hardware_vtep", rh.HardwareVTEP.Line, "physical switch %s at %s is already configured by %s",
				key[1], key[0], other)
		}
		done := map[*Host]bool{}
		for _, n := range t.Networks {
			if !n.HasPortOn(h) {
				continue
			}
			for _, pt := range n.Ports {
				o := pt.Host
				if o == nil || o == h || o.Managed || done[o] || o.DstPort == HardwareVTEPDstPort {
					continue
				}
				done[o] = true
				ro := raw[o]
				p.add(ro.path+".dst_port", lineOf(ro.DstPort, ro.VTEP), "%d: host %s shares network %s with hardware VTEP %s, which sends VXLAN to port %d only",
					o.DstPort, o.Name, n.Name, h.Name, HardwareVTEPDstPort)
			}
		}
	}
}

// HardwareVTEPs returns the hosts configured through the hardware_vtep
// schema, in file order.
func (t *Topology) HardwareVTEPs() []*Host {
	var out []*Host
	for _, h := range t.Hosts {
		if h.IsHardwareVTEP() {
			out = append(out, h)
		}
	}
	return out
}
