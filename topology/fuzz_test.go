package topology

import (
	"os"
	"reflect"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: Parse never panics, is deterministic, and whatever it accepts
// keeps the rules' guarantees and survives a round trip through YAML.
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		queryTopology,
		specExample,
		"",
		"~",
		"name: t\nhosts: [{name: a, vtep: 10.0.0.1, routes: [&r {to: 10.8.0.0/16, via: 10.0.0.9}]}, {name: b, vtep: 10.0.0.2, routes: [*r]}]\n",
		"name: t\ncontroller: 'tcp:[::1]:6653'\ndefaults: {mode: controller}\nhosts: [{name: a, vtep: '::1'}]\n",
		"name: t\ncontroller: ['tcp:10.0.0.9:6653', 'ssl:10.0.0.8:6653']\ndirectory: ['tcp:10.0.0.9:6641']\n" +
			"defaults: {mode: controller}\nhosts: [{name: a, vtep: 10.0.0.1}]\n",
		"name: t\nhosts: [{name: a, vtep: 10.0.0.1, dst_port: 8472}, {name: b, vtep: 10.0.0.2}]\n" +
			"networks: [{name: n, vni: 1, ports: [{host: a, name: p, ip: 10.1.1.2/24, gateway: 10.1.1.1}, {host: b, name: p}]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse(data)
		top2, err2 := Parse(data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || !reflect.DeepEqual(top, top2) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if errs, ok := err.(*Errors); !ok || len(errs.List) == 0 {
				t.Fatalf("error %T %v is not a non-empty *Errors", err, err)
			}
			return
		}
		checkInvariants(t, top)
		again, err := yaml.Marshal(render(top))
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("rendered topology does not parse: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(top, back) {
			t.Fatalf("round trip changed the topology:\n%s", again)
		}
	})
}

// checkInvariants checks what every parsed topology guarantees its users.
func checkInvariants(t *testing.T, top *Topology) {
	t.Helper()
	if (top.Controller == "") != (len(top.Controllers) == 0) || (top.Controller != "" && top.Controller != top.Controllers[0]) {
		t.Fatalf("controller %q is not the first of %q", top.Controller, top.Controllers)
	}
	hosts := map[*Host]bool{}
	names := map[string]bool{}
	for _, h := range top.Hosts {
		if names[h.Name] || !h.VTEP.IsValid() || h.DstPort == 0 || h.LearnTimeout == 0 {
			t.Fatalf("bad host %+v", h)
		}
		if h.Managed && h.Mode == ModeController && top.Controller == "" {
			t.Fatalf("host %s in controller mode without a controller", h.Name)
		}
		names[h.Name], hosts[h] = true, true
	}
	vnis := map[uint32]bool{}
	ports := map[[2]string]bool{}
	for _, n := range top.Networks {
		if vnis[n.VNI] || n.VNI == 0 || n.VNI > MaxVNI {
			t.Fatalf("bad VNI %d", n.VNI)
		}
		vnis[n.VNI] = true
		for _, p := range n.Ports {
			key := [2]string{p.Host.Name, p.Name}
			if p.Host.IsHardwareVTEP() {
				// A physical port carries one VLAN per network.
				key[1] += "\x00" + strconv.Itoa(int(p.VLAN))
			}
			if !hosts[p.Host] || p.Network != n || ports[key] || portNameProblemOn(p.Host, p.Name) != "" {
				t.Fatalf("bad port %+v", p)
			}
			ports[key] = true
			if !p.Host.Managed && ((p.MAC == nil && !p.Host.IsHardwareVTEP()) || p.Type != PortVM) {
				t.Fatalf("port %s on unmanaged host %s", p.Name, p.Host.Name)
			}
			if p.VLAN > MaxVLAN || (p.VLAN != 0 && !p.Host.IsHardwareVTEP()) {
				t.Fatalf("port %s on host %s has vlan %d", p.Name, p.Host.Name, p.VLAN)
			}
			if p.MAC != nil && (len(p.MAC) != 6 || p.MAC[0]&1 != 0) {
				t.Fatalf("bad MAC %s", p.MAC)
			}
			if p.Gateway.IsValid() && !p.IP.Contains(p.Gateway) {
				t.Fatalf("gateway %s outside %s", p.Gateway, p.IP)
			}
		}
	}
	for _, a := range top.Hosts {
		for _, b := range top.Peers(a) {
			if a.VTEP.Is4() != b.VTEP.Is4() || (a.Managed && b.Managed && a.DstPort != b.DstPort) {
				t.Fatalf("peers %s and %s disagree: %+v %+v", a.Name, b.Name, a, b)
			}
		}
	}
}

// render writes a topology back as a file that must parse to the same
// values: every inheritable setting is spelled out on each host except
// dst_port, which must stay inherited where the host did not declare it.
func render(top *Topology) map[string]any {
	file := map[string]any{"name": top.Name}
	switch {
	case len(top.Controllers) > 1:
		file["controller"] = top.Controllers
	case top.Controller != "":
		file["controller"] = top.Controller
	}
	if top.Directory != nil {
		file["directory"] = top.Directory
	}
	var hosts []map[string]any
	for _, h := range top.Hosts {
		m := map[string]any{
			"name": h.Name, "vtep": h.VTEP.String(), "managed": h.Managed,
			"mode": string(h.Mode), "datapath": string(h.Datapath), "learn_timeout": h.LearnTimeout,
		}
		if h.DstPortSet {
			m["dst_port"] = h.DstPort
		} else {
			file["defaults"] = map[string]any{"dst_port": h.DstPort}
		}
		var routes []map[string]any
		for _, r := range h.Routes {
			routes = append(routes, map[string]any{"to": r.To.String(), "via": r.Via.String()})
		}
		if routes != nil {
			m["routes"] = routes
		}
		if hw := h.HardwareVTEP; hw != nil {
			m["hardware_vtep"] = map[string]any{"ovsdb": hw.OVSDB, "physical_switch": hw.PhysicalSwitch}
		}
		hosts = append(hosts, m)
	}
	file["hosts"] = hosts
	var nets []map[string]any
	for _, n := range top.Networks {
		m := map[string]any{"name": n.Name, "vni": n.VNI}
		if n.MTU != 0 {
			m["mtu"] = n.MTU
		}
		var ports []map[string]any
		for _, p := range n.Ports {
			pm := map[string]any{"host": p.Host.Name, "name": p.Name, "type": string(p.Type)}
			if p.MAC != nil {
				pm["mac"] = p.MAC.String()
			}
			if p.IP.IsValid() {
				pm["ip"] = p.IP.String()
			}
			if p.Gateway.IsValid() {
				pm["gateway"] = p.Gateway.String()
			}
			if p.IfaceID != "" {
				pm["iface_id"] = p.IfaceID
			}
			if p.Host.IsHardwareVTEP() {
				pm["vlan"] = p.VLAN
			}
			ports = append(ports, pm)
		}
		if ports != nil {
			m["ports"] = ports
		}
		nets = append(nets, m)
	}
	if nets != nil {
		file["networks"] = nets
	}
	return file
}
