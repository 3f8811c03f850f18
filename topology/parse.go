package topology

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Limits of the file format (see the topology spec).
const (
	MaxNameLen        = 20        // topology name
	MaxHostNameLen    = 12        // host names: "vx-" + host name must fit an interface name
	MaxNetworkNameLen = 64        // network names
	MaxIfaceNameLen   = 15        // the kernel's IFNAMSIZ - 1
	MaxVNI            = 1<<24 - 1 // VXLAN's 24-bit network identifier
)

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("invalid topology %s:\n%w", path, err)
	}
	return t, nil
}

// Parse decodes and validates a topology file. On failure the error is an
// *Errors holding every problem found (up to 1000, then a count of the
// rest), sorted by line, each naming its YAML path (e.g. "networks[1].vni").
func Parse(data []byte) (*Topology, error) {
	var p problems
	var t *Topology
	if raw := p.decodeRaw(data); raw != nil {
		t = p.resolve(raw)
	}
	if len(p.list) > 0 {
		slices.SortStableFunc(p.list, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
		if p.dropped > 0 {
			p.list = append(p.list, &Error{Msg: fmt.Sprintf("%d more problems not shown", p.dropped)})
		}
		return nil, &Errors{List: p.list}
	}
	return t, nil
}

// settings are a host's inheritable values, resolved.
type settings struct {
	mode         Mode
	modeLine     int // where mode was set; 0 for the built-in default
	dstPort      uint16
	datapath     Datapath
	learnTimeout uint16
}

var builtin = settings{mode: DefaultMode, dstPort: DefaultDstPort, datapath: DefaultDatapath, learnTimeout: DefaultLearnTimeout}

// settings resolves r's fields at path over base.
func (p *problems) settings(r rawSettings, path string, base settings) settings {
	s := base
	if v, ok := p.str(r.Mode, join(path, "mode")); ok {
		if m := Mode(v); m == ModeLearn || m == ModeController {
			s.mode, s.modeLine = m, r.Mode.Line
		} else {
			p.add(join(path, "mode"), r.Mode.Line, "want learn or controller, got %q", v)
		}
	}
	if v, ok := p.integer(r.DstPort, join(path, "dst_port"), 1, 65535); ok {
		s.dstPort = uint16(v)
	}
	if v, ok := p.str(r.Datapath, join(path, "datapath")); ok {
		if d := Datapath(v); d == DatapathSystem || d == DatapathNetdev {
			s.datapath = d
		} else {
			p.add(join(path, "datapath"), r.Datapath.Line, "want system or netdev, got %q", v)
		}
	}
	if v, ok := p.integer(r.LearnTimeout, join(path, "learn_timeout"), 1, 65535); ok {
		s.learnTimeout = uint16(v)
	}
	return s
}

// resolve turns raw values into a Topology, reporting every rule broken.
// Like the compiler it has one step per part: the top-level fields, the
// hosts, the networks with their ports, then the rules between host pairs.
func (p *problems) resolve(r *rawTopology) *Topology {
	t := &Topology{}
	def := p.topLevel(r, t)
	hostByName, raw := p.hosts(r, t, def)
	claims := networkClaims{names: map[string]string{}, vnis: map[uint32]string{}, ports: map[[2]string]string{},
		ifaceIDs: map[[2]string]string{}}
	for _, rn := range r.Networks {
		n := p.network(rn, claims)
		p.networkPorts(rn, n, hostByName, claims)
		t.Networks = append(t.Networks, n)
	}
	p.checkPairs(t, raw)
	p.checkHardwareVTEPs(t, raw)
	return t
}

// topLevel resolves the topology's name and controller, and returns the
// defaults every host inherits.
func (p *problems) topLevel(r *rawTopology, t *Topology) settings {
	if p.need(r.Name, "name", r.line) {
		if v, ok := p.str(r.Name, "name"); ok {
			t.Name = v
			p.checkName(v, MaxNameLen, "name", r.Name.Line)
		}
	}
	def := p.settings(r.Defaults, "defaults", builtin)
	t.Controllers = p.targets(r.Controller, "controller")
	if len(t.Controllers) > 0 {
		t.Controller = t.Controllers[0]
	}
	t.Directory = p.targets(r.Directory, "directory")
	for i, d := range t.Directory {
		if slices.ContainsFunc(t.Controllers, func(c string) bool { return targetAddr(c) == targetAddr(d) }) {
			p.add(fmt.Sprintf("directory[%d]", i), r.Directory.Line, "%s is also a controller target", targetAddr(d))
		}
	}
	return def
}

// targetAddr is the IP:PORT of a canonical target.
func targetAddr(target string) string {
	_, addr, _ := strings.Cut(target, ":")
	return addr
}

// targets resolves n, a "tcp:IP:PORT"/"ssl:IP:PORT" target or a non-empty
// list of them, into canonical targets, each once. Nil when n is absent or
// any target is wrong (each is reported).
func (p *problems) targets(n *yaml.Node, path string) []string {
	if n == nil {
		return nil
	}
	if deref(n).Kind != yaml.SequenceNode {
		v, ok := p.str(n, path)
		if !ok {
			return nil
		}
		c, err := parseController(v)
		if err != nil {
			p.add(path, n.Line, "%v", err)
			return nil
		}
		return []string{c}
	}
	list := p.items(n, path)
	if list != nil && len(list) == 0 {
		p.add(path, n.Line, "at least one target is required")
	}
	var out []string
	seen := map[string]string{}
	bad := false
	for i, item := range list {
		ip := fmt.Sprintf("%s[%d]", path, i)
		v, ok := p.str(item, ip)
		if !ok {
			bad = true
			continue
		}
		c, err := parseController(v)
		switch {
		case err != nil:
			p.add(ip, item.Line, "%v", err)
			bad = true
		case claim(seen, targetAddr(c), ip) != "":
			// By address: tcp: and ssl: cannot share one listener.
			p.add(ip, item.Line, "%s is already used by %s", targetAddr(c), seen[targetAddr(c)])
			bad = true
		default:
			out = append(out, c)
		}
	}
	if bad {
		return nil
	}
	return out
}

// hosts resolves the hosts into t over the defaults. Names and VTEPs are
// unique, and managed hosts in controller mode need a controller to connect
// to. It returns the first host of each name (ports name their host) and
// each host's raw form (checkPairs reports at its lines).
func (p *problems) hosts(r *rawTopology, t *Topology, def settings) (map[string]*Host, map[*Host]*rawHost) {
	hostByName := map[string]*Host{}
	hostPaths := map[string]string{}
	vteps := map[netip.Addr]string{}
	raw := map[*Host]*rawHost{}
	var wantController []string
	ctlLine := 0
	for _, rh := range r.Hosts {
		h := p.host(rh, def)
		if h.Name != "" {
			if other := claim(hostPaths, h.Name, rh.path); other != "" {
				p.add(rh.path+".name", rh.Name.Line, "%s is already used by %s", h.Name, other)
			} else {
				hostByName[h.Name] = h
			}
		}
		if h.VTEP.IsValid() {
			if other := claim(vteps, h.VTEP, rh.path); other != "" {
				p.add(rh.path+".vtep", rh.VTEP.Line, "%s is already used by %s", h.VTEP, other)
			}
		}
		if h.Managed && h.Mode == ModeController {
			wantController = append(wantController, h.Name)
			if ctlLine == 0 {
				ctlLine = lineOf(rh.Mode, r.Defaults.Mode)
			}
		}
		raw[h] = rh
		t.Hosts = append(t.Hosts, h)
	}
	if len(wantController) > 0 && r.Controller == nil {
		p.add("controller", ctlLine, "required: managed hosts in controller mode (%s) need a controller to connect to",
			strings.Join(wantController, ", "))
	}
	return hostByName, raw
}

// networkClaims are what must be unique across all networks: the network
// names, the VNIs, and a port name on each host.
type networkClaims struct {
	names map[string]string
	vnis  map[uint32]string
	ports map[[2]string]string // (host, port name) -> path
	// ifaceIDs: (host, iface_id) -> path; two ports bound to one
	// interface would fight over its VLAN tag.
	ifaceIDs map[[2]string]string
}

// network resolves a network's name and VNI, each unique, and its MTU.
func (p *problems) network(rn *rawNetwork, c networkClaims) *Network {
	n := &Network{}
	if p.need(rn.Name, rn.path+".name", rn.line) {
		if v, ok := p.str(rn.Name, rn.path+".name"); ok {
			n.Name = v
			if msg := networkNameProblem(v); msg != "" {
				p.add(rn.path+".name", rn.Name.Line, "%s", msg)
			} else if other := claim(c.names, v, rn.path); other != "" {
				p.add(rn.path+".name", rn.Name.Line, "%s is already used by %s", v, other)
			}
		}
	}
	if p.need(rn.VNI, rn.path+".vni", rn.line) {
		if v, ok := p.integer(rn.VNI, rn.path+".vni", 1, MaxVNI); ok {
			n.VNI = uint32(v)
			if other := claim(c.vnis, n.VNI, rn.path); other != "" {
				p.add(rn.path+".vni", rn.VNI.Line, "%d is already used by %s", v, other)
			}
		}
	}
	if v, ok := p.integer(rn.MTU, rn.path+".mtu", MinMTU, MaxMTU); ok {
		n.MTU = int(v)
	}
	return n
}

// networkPorts resolves n's ports. A port name is unique on its host (OVS
// port names are per switch); MACs and IPs are unique within the network,
// whose hosts share one L2 segment.
func (p *problems) networkPorts(rn *rawNetwork, n *Network, hostByName map[string]*Host, c networkClaims) {
	macs := map[string]string{}
	ips := map[netip.Addr]string{}
	for _, rp := range rn.Ports {
		pt := p.port(rp, n, hostByName)
		p.claimPort(rn, rp, pt, c)
		if pt.Host != nil && pt.IfaceID != "" {
			if other := claim(c.ifaceIDs, [2]string{pt.Host.Name, pt.IfaceID}, rp.path); other != "" {
				p.add(rp.path+".iface_id", rp.IfaceID.Line, "%q is already used on host %s by %s", pt.IfaceID, pt.Host.Name, other)
			}
		}
		if pt.MAC != nil {
			if other := claim(macs, pt.MAC.String(), rp.path); other != "" {
				p.add(rp.path+".mac", rp.MAC.Line, "%s is already used by %s", pt.MAC, other)
			}
		}
		if pt.IP.IsValid() {
			if other := claim(ips, pt.IP.Addr(), rp.path); other != "" {
				p.add(rp.path+".ip", rp.IP.Line, "address %s is already used by %s", pt.IP.Addr(), other)
			}
		}
		n.Ports = append(n.Ports, pt)
	}
}

// host resolves one host over the defaults.
func (p *problems) host(rh *rawHost, def settings) *Host {
	h := &Host{Managed: true}
	if p.need(rh.Name, rh.path+".name", rh.line) {
		if v, ok := p.str(rh.Name, rh.path+".name"); ok {
			h.Name = v
			p.checkName(v, MaxHostNameLen, rh.path+".name", rh.Name.Line)
		}
	}
	if p.need(rh.VTEP, rh.path+".vtep", rh.line) {
		if a, ok := p.addr(rh.VTEP, rh.path+".vtep"); ok {
			if a.IsUnspecified() || a.IsMulticast() {
				p.add(rh.path+".vtep", rh.VTEP.Line, "%s cannot be a tunnel endpoint (unspecified or multicast)", a)
			} else {
				h.VTEP = a
			}
		}
	}
	if v, ok := p.boolean(rh.Managed, rh.path+".managed"); ok {
		h.Managed = v
	}
	s := p.settings(rh.rawSettings, rh.path, def)
	h.Mode, h.DstPort, h.Datapath, h.LearnTimeout = s.mode, s.dstPort, s.datapath, s.learnTimeout
	h.DstPortSet = rh.DstPort != nil
	p.hardwareVTEP(rh, h)
	if len(rh.Routes) > 0 && !h.Managed {
		p.add(rh.path+".routes", rh.Routes[0].line, "an unmanaged host cannot have routes (nothing would apply them)")
	}
	routed := map[netip.Prefix]string{}
	for _, rr := range rh.Routes {
		rt, ok := p.route(rr)
		if !ok {
			continue
		}
		if other := claim(routed, rt.To, rr.path); other != "" {
			p.add(rr.path+".to", rr.To.Line, "%s is already routed by %s", rt.To, other)
			continue
		}
		h.Routes = append(h.Routes, rt)
	}
	return h
}

// route resolves one route; to and via must be of one family.
func (p *problems) route(rr *rawRoute) (Route, bool) {
	var rt Route
	okTo := p.need(rr.To, rr.path+".to", rr.line)
	if okTo {
		rt.To, okTo = p.prefix(rr.To, rr.path+".to", "10.1.8.0/24")
		if okTo && rt.To != rt.To.Masked() {
			p.add(rr.path+".to", rr.To.Line, "%s has host bits set; the route's destination is %s", rt.To, rt.To.Masked())
			okTo = false
		}
	}
	okVia := p.need(rr.Via, rr.path+".via", rr.line)
	if okVia {
		rt.Via, okVia = p.addr(rr.Via, rr.path+".via")
		if okVia && (rt.Via.IsUnspecified() || rt.Via.IsMulticast()) {
			p.add(rr.path+".via", rr.Via.Line, "%s cannot be a gateway (unspecified or multicast)", rt.Via)
			okVia = false
		}
	}
	if okTo && okVia && rt.To.Addr().Is4() != rt.Via.Is4() {
		p.add(rr.path+".via", rr.Via.Line, "%s is %s but to %s is %s", rt.Via, family(rt.Via), rt.To, family(rt.To.Addr()))
		return rt, false
	}
	return rt, okTo && okVia
}

// port resolves one port of network n.
func (p *problems) port(rp *rawPort, n *Network, hostByName map[string]*Host) *Port {
	pt := &Port{Network: n, Type: PortVM}
	if p.need(rp.Host, rp.path+".host", rp.line) {
		if v, ok := p.str(rp.Host, rp.path+".host"); ok {
			if pt.Host = hostByName[v]; pt.Host == nil {
				p.add(rp.path+".host", rp.Host.Line, "no host named %q", v)
			}
		}
	}
	if p.need(rp.Name, rp.path+".name", rp.line) {
		if v, ok := p.str(rp.Name, rp.path+".name"); ok {
			if msg := portNameProblemOn(pt.Host, v); msg != "" {
				p.add(rp.path+".name", rp.Name.Line, "%s", msg)
			} else {
				pt.Name = v
			}
		}
	}
	if v, ok := p.str(rp.Type, rp.path+".type"); ok {
		switch PortType(v) {
		case PortVM, PortInternal:
			pt.Type = PortType(v)
		default:
			p.add(rp.path+".type", rp.Type.Line, "want vm or internal, got %q", v)
		}
	}
	if v, ok := p.str(rp.MAC, rp.path+".mac"); ok {
		mac, err := net.ParseMAC(v)
		switch {
		case err != nil || len(mac) != 6:
			p.add(rp.path+".mac", rp.MAC.Line, "want a MAC address like 52:54:00:00:01:02, got %q", v)
		case mac[0]&1 != 0:
			p.add(rp.path+".mac", rp.MAC.Line, "%s is a multicast address; a port needs a unicast MAC", mac)
		case string(mac) == "\x00\x00\x00\x00\x00\x00":
			p.add(rp.path+".mac", rp.MAC.Line, "%s is not a usable MAC", mac)
		default:
			pt.MAC = mac
		}
	}
	if rp.IP != nil {
		if ip, ok := p.prefix(rp.IP, rp.path+".ip", "10.1.1.2/24"); ok {
			if msg := hostAddrProblem(ip); msg != "" {
				p.add(rp.path+".ip", rp.IP.Line, "%s", msg)
			} else {
				pt.IP = ip
			}
		}
	}
	if rp.Gateway != nil {
		if gw, ok := p.addr(rp.Gateway, rp.path+".gateway"); ok {
			line := rp.Gateway.Line
			switch {
			case rp.IP == nil:
				p.add(rp.path+".gateway", line, "a gateway needs the port's ip")
			case !pt.IP.IsValid():
				// ip is wrong and already reported
			case gw.Is4() != pt.IP.Addr().Is4():
				p.add(rp.path+".gateway", line, "%s is %s but ip %s is %s", gw, family(gw), pt.IP, family(pt.IP.Addr()))
			case !pt.IP.Contains(gw):
				p.add(rp.path+".gateway", line, "%s is outside the port's network %s", gw, pt.IP.Masked())
			case gw == pt.IP.Addr():
				p.add(rp.path+".gateway", line, "%s is the port's own address", gw)
			default:
				pt.Gateway = gw
			}
		}
	}
	p.ifaceID(rp, pt)
	p.portVLAN(rp, pt)
	if h := pt.Host; h != nil && !h.Managed {
		if pt.Type == PortInternal {
			p.add(rp.path+".type", rp.Type.Line, "host %s is unmanaged: nothing would create an internal port there", h.Name)
		}
		if rp.MAC == nil && !h.IsHardwareVTEP() {
			p.add(rp.path+".mac", rp.line, "required: host %s is unmanaged, so this port's MAC cannot be learned there", h.Name)
		}
	}
	return pt
}

// ifaceID resolves a port's iface_id: not empty, printable, and only on a
// vm port of a managed host (only there does apply bind interfaces).
func (p *problems) ifaceID(rp *rawPort, pt *Port) {
	v, ok := p.str(rp.IfaceID, rp.path+".iface_id")
	if !ok {
		return
	}
	path, line := rp.path+".iface_id", rp.IfaceID.Line
	switch {
	case v == "":
		p.add(path, line, "must not be empty")
	case !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		p.add(path, line, "%q may not contain spaces or control characters", v)
	case pt.Type != PortVM:
		p.add(path, line, "only vm ports can be bound by iface_id; this port is %s", pt.Type)
	case pt.Host != nil && !pt.Host.Managed:
		p.add(path, line, "host %s is unmanaged: nothing would bind the interface there", pt.Host.Name)
	default:
		pt.IfaceID = v
	}
}

// checkPairs checks the hosts of each network, reporting at most one problem
// of each kind per host: hosts sharing a network need VTEPs of one family
// (a tunnel joins two addresses of one family), and managed hosts sharing a
// network need the same dst_port. Each host is compared with the first host
// (in file order) of the network, which keeps this linear in the ports.
func (p *problems) checkPairs(t *Topology, raw map[*Host]*rawHost) {
	index := make(map[*Host]int, len(t.Hosts))
	for i, h := range t.Hosts {
		index[h] = i
	}
	famDone, portDone := map[*Host]bool{}, map[*Host]bool{}
	for _, n := range t.Networks {
		seen := map[*Host]bool{}
		var hosts []*Host // n's hosts in file order, once each
		for _, pt := range n.Ports {
			if pt.Host != nil && !seen[pt.Host] {
				seen[pt.Host] = true
				hosts = append(hosts, pt.Host)
			}
		}
		slices.SortFunc(hosts, func(a, b *Host) int { return cmp.Compare(index[a], index[b]) })
		var first, firstManaged *Host
		for _, b := range hosts {
			if a := first; a != nil && b.VTEP.IsValid() && a.VTEP.Is4() != b.VTEP.Is4() && !famDone[b] {
				famDone[b] = true
				p.add(raw[b].path+".vtep", raw[b].VTEP.Line, "%s is %s but %s's vtep %s is %s, and both hosts share network %s",
					b.VTEP, family(b.VTEP), a.Name, a.VTEP, family(a.VTEP), n.Name)
			}
			if first == nil && b.VTEP.IsValid() {
				first = b
			}
			if !b.Managed {
				continue
			}
			if a := firstManaged; a != nil && a.DstPort != b.DstPort {
				// Blame the host that declared its port; both cannot inherit it.
				x, y := b, a
				if !b.DstPortSet {
					x, y = a, b
				}
				if !portDone[x] {
					portDone[x] = true
					p.add(raw[x].path+".dst_port", lineOf(raw[x].DstPort), "%d differs from %s's %d, and both are managed hosts sharing network %s",
						x.DstPort, y.Name, y.DstPort, n.Name)
				}
			}
			if firstManaged == nil {
				firstManaged = b
			}
		}
	}
}

// claim records that path uses key, returning the path that used it first
// or "" when it is the first.
func claim[K comparable](used map[K]string, key K, path string) string {
	if other, dup := used[key]; dup {
		return other
	}
	used[key] = path
	return ""
}

// need reports whether n is present, reporting a missing required field.
func (p *problems) need(n *yaml.Node, path string, parentLine int) bool {
	if n == nil {
		p.add(path, parentLine, "required")
		return false
	}
	return true
}

// str returns scalar n's text; numbers and booleans count as their text.
func (p *problems) str(n *yaml.Node, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	if d := deref(n); d.Kind == yaml.ScalarNode {
		return d.Value, true
	}
	p.add(path, n.Line, "want a string, got %s", describe(deref(n)))
	return "", false
}

// integer returns n's value when n is an integer in lo..hi.
func (p *problems) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	if n == nil {
		return 0, false
	}
	d := deref(n)
	var v int64
	// The tag check keeps yaml.v3 from truncating floats such as 4789.5.
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!int" || d.Decode(&v) != nil {
		p.add(path, n.Line, "want an integer in %d..%d, got %s", lo, hi, describe(d))
		return 0, false
	}
	if v < lo || v > hi {
		p.add(path, n.Line, "%d is out of range %d..%d", v, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *problems) boolean(n *yaml.Node, path string) (bool, bool) {
	if n == nil {
		return false, false
	}
	d := deref(n)
	var v bool
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!bool" || d.Decode(&v) != nil {
		p.add(path, n.Line, "want true or false, got %s", describe(d))
		return false, false
	}
	return v, true
}

// addr parses n as an IP address without zone; IPv4-mapped IPv6 addresses
// are refused so that one address has one spelling.
func (p *problems) addr(n *yaml.Node, path string) (netip.Addr, bool) {
	v, ok := p.str(n, path)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		p.add(path, n.Line, "want an IPv4 or IPv6 address, got %q", v)
	case a.Zone() != "":
		p.add(path, n.Line, "%s has a zone; zones are not supported", a)
	case a.Is4In6():
		p.add(path, n.Line, "%s is an IPv4-mapped IPv6 address; write %s", a, a.Unmap())
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// prefix parses n as address/length (the address is kept, not masked).
func (p *problems) prefix(n *yaml.Node, path, example string) (netip.Prefix, bool) {
	v, ok := p.str(n, path)
	if !ok {
		return netip.Prefix{}, false
	}
	pf, err := netip.ParsePrefix(v)
	switch {
	case err != nil:
		if _, aerr := netip.ParseAddr(v); aerr == nil {
			p.add(path, n.Line, "%s has no prefix length; write it like %s", v, example)
		} else {
			p.add(path, n.Line, "want an address with prefix length like %s, got %q", example, v)
		}
	case pf.Addr().Is4In6():
		p.add(path, n.Line, "%s is an IPv4-mapped IPv6 prefix; use the IPv4 form", pf)
	default:
		return pf, true
	}
	return netip.Prefix{}, false
}

// hostAddrProblem says why ip cannot be an interface address, or "".
func hostAddrProblem(ip netip.Prefix) string {
	a, bits := ip.Addr(), ip.Bits()
	if a.IsUnspecified() || a.IsMulticast() {
		return fmt.Sprintf("%s cannot be an interface address (unspecified or multicast)", ip)
	}
	if bits > a.BitLen()-2 { // /31, /32, /127, /128 have no network or broadcast address
		return ""
	}
	if a == ip.Masked().Addr() {
		return fmt.Sprintf("%s is the network address of %s; give the port's own address, like %s", ip, ip.Masked(), ip.Masked().Addr().Next())
	}
	if a.Is4() {
		b := a.As4()
		host := ^uint32(0) >> bits
		if (uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))&host == host {
			return fmt.Sprintf("%s is the broadcast address of %s", ip, ip.Masked())
		}
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// checkName checks a topology or host name: [a-z0-9-], at most max chars.
func (p *problems) checkName(v string, max int, path string, line int) {
	switch {
	case v == "":
		p.add(path, line, "must not be empty")
	case !nameRE.MatchString(v):
		p.add(path, line, "%q may only contain lowercase letters, digits and '-'", v)
	case len(v) > max:
		p.add(path, line, "%q is %d characters long; at most %d are allowed", v, len(v), max)
	}
}

// networkNameProblem says why v cannot name a network, or "".
func networkNameProblem(v string) string {
	switch {
	case v == "":
		return "must not be empty"
	case !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Sprintf("%q may not contain spaces or control characters", v)
	case len(v) > MaxNetworkNameLen:
		return fmt.Sprintf("%q is %d characters long; at most %d are allowed", v, len(v), MaxNetworkNameLen)
	}
	return ""
}

// portNameProblem says why v cannot name a network port, or "": it must be a
// valid kernel interface name (the rules of the kernel's dev_valid_name) and
// must not be one of the names ovs-vxctl keeps for itself.
func portNameProblem(v string) string {
	switch {
	case v == "":
		return "must not be empty"
	case len(v) > MaxIfaceNameLen:
		return fmt.Sprintf("%q is %d characters long; interface names have at most %d", v, len(v), MaxIfaceNameLen)
	case v == "." || v == "..":
		return fmt.Sprintf("%q is not a valid interface name", v)
	case !utf8.ValidString(v):
		return fmt.Sprintf("%q is not valid UTF-8", v)
	case strings.IndexFunc(v, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("%q is not a valid interface name: no '/', ':', spaces or control characters", v)
	case slices.Contains(ReservedPortNames(), v):
		return fmt.Sprintf("%s is reserved for ovs-vxctl's own bridges and ports", v)
	case v == "ovs-netdev" || v == "ovs-system":
		// The datapaths' own devices: made a port, they would loop the
		// datapath into itself.
		return fmt.Sprintf("%s is the device of an Open vSwitch datapath, never a port", v)
	case strings.HasPrefix(v, TunnelPortPrefix):
		return fmt.Sprintf("%q starts with %q, which is reserved for ovs-vxctl's tunnel ports", v, TunnelPortPrefix)
	}
	return ""
}

// parseController checks a "tcp:IP:PORT" or "ssl:IP:PORT" target and returns
// it in canonical form (IPv6 in brackets).
func parseController(v string) (string, error) {
	proto, rest, ok := strings.Cut(v, ":")
	if !ok || (proto != "tcp" && proto != "ssl") {
		return "", fmt.Errorf("want tcp:IP:PORT or ssl:IP:PORT, got %q", v)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return "", fmt.Errorf("want %s:IP:PORT (IPv6 as %s:[::1]:6653), got %q", proto, proto, v)
	}
	if ap.Port() == 0 {
		return "", fmt.Errorf("port 0 in %q: want 1..65535", v)
	}
	if ap.Addr().Zone() != "" || ap.Addr().Is4In6() || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
		return "", fmt.Errorf("%s is not an address a switch can connect to", ap.Addr())
	}
	return proto + ":" + ap.String(), nil
}

// lineOf returns the line of the first present node, or 0.
func lineOf(nodes ...*yaml.Node) int {
	for _, n := range nodes {
		if n != nil {
			return n.Line
		}
	}
	return 0
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
