package topology

import "testing"

// Every iface_id rule, each reported at the field.
func TestParseIfaceIDRules(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []want
	}{
		{"empty", onePort("host: h1, name: web, iface_id: ''"),
			[]want{{"networks[0].ports[0].iface_id", "must not be empty", 10}}},
		{"space", onePort("host: h1, name: web, iface_id: 'a b'"),
			[]want{{"networks[0].ports[0].iface_id", "may not contain spaces", 10}}},
		{"list", onePort("host: h1, name: web, iface_id: [a]"),
			[]want{{"networks[0].ports[0].iface_id", "want a string, got a list", 10}}},
		{"internal port", onePort("host: h1, name: web, type: internal, iface_id: x"),
			[]want{{"networks[0].ports[0].iface_id", "only vm ports can be bound by iface_id; this port is internal", 10}}},
		{"unmanaged host", onePort("host: h3, name: web, mac: '52:54:00:00:00:01', iface_id: x"),
			[]want{{"networks[0].ports[0].iface_id", "host h3 is unmanaged", 10}}},
		{"duplicate on one host", onePort("host: h1, name: web, iface_id: x", "host: h1, name: db, iface_id: x"),
			[]want{{"networks[0].ports[1].iface_id", `"x" is already used on host h1 by networks[0].ports[0]`, 11}}},
		{"duplicate across networks", hdr + hosts3 + networks(
			network("n1", "1", "host: h1, name: web, iface_id: x"),
			network("n2", "2", "host: h1, name: db, iface_id: x")),
			[]want{{"networks[1].ports[0].iface_id", "already used on host h1 by networks[0].ports[0]", 14}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkProblems(t, c.yaml, c.want) })
	}
}

// The same iface_id on two hosts is fine (each host binds its own
// interface), and name stays the port's identity.
func TestParseIfaceID(t *testing.T) {
	top := mustParse(t, onePort("host: h1, name: web, iface_id: vm-web-01", "host: h2, name: web2, iface_id: vm-web-01", "host: h2, name: plain"))
	ports := top.Network("n1").Ports
	if ports[0].Name != "web" || ports[0].IfaceID != "vm-web-01" || ports[1].IfaceID != "vm-web-01" || ports[2].IfaceID != "" {
		t.Errorf("ports resolved wrongly: %+v %+v %+v", ports[0], ports[1], ports[2])
	}
}
