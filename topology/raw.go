package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The raw layer mirrors the file's shape. Every scalar is kept as the YAML
// node it came from (nil when absent or null), so that resolution can check
// its type and report its line. Decoding into raw values checks only the
// shape: mappings, lists, unknown and duplicate keys.

type rawTopology struct {
	line             int
	Name, Controller *yaml.Node
	// Directory is the directory's endpoints (a list; decoded by targets).
	Directory *yaml.Node
	Defaults  rawSettings
	Hosts     []*rawHost
	Networks  []*rawNetwork
}

// rawSettings are the fields a host inherits from defaults or overrides.
type rawSettings struct {
	Mode, DstPort, Datapath, LearnTimeout *yaml.Node
}

type rawHost struct {
	path                string
	line                int
	Name, VTEP, Managed *yaml.Node
	rawSettings
	Routes []*rawRoute
	// HardwareVTEP is the hardware_vtep mapping, decoded by hardwareVTEP.
	HardwareVTEP *yaml.Node
}

type rawRoute struct {
	path    string
	line    int
	To, Via *yaml.Node
}

type rawNetwork struct {
	path           string
	line           int
	Name, VNI, MTU *yaml.Node
	Ports          []*rawPort
}

type rawPort struct {
	path                                        string
	line                                        int
	Host, Name, Type, MAC, IP, Gateway, IfaceID *yaml.Node
	VLAN                                        *yaml.Node
}

func (s *rawSettings) fields() map[string]**yaml.Node {
	return map[string]**yaml.Node{
		"mode": &s.Mode, "dst_port": &s.DstPort, "datapath": &s.Datapath, "learn_timeout": &s.LearnTimeout,
	}
}

// maxItems bounds the hosts, routes, networks and ports of one file, counted
// after alias expansion: a few lines of anchors and aliases can otherwise
// stand for billions of items.
const maxItems = 1_000_000

// maxProblems bounds the problems reported for one file; the rest are counted.
const maxProblems = 1000

// problems collects every Error found while parsing one file.
type problems struct {
	list     []*Error
	count    int  // list items decoded so far
	tooLarge bool // maxItems was exceeded and reported
	dropped  int  // problems beyond maxProblems
}

func (p *problems) add(path string, line int, format string, args ...any) {
	if len(p.list) >= maxProblems {
		p.dropped++
		return
	}
	p.list = append(p.list, &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlLine matches yaml.v3's syntax errors, which carry their line in the text.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *problems) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.add("", line, "invalid YAML: %s", m[2])
		return
	}
	p.add("", 0, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// document parses data as exactly one YAML document and returns its root.
func (p *problems) document(data []byte) (root *yaml.Node) {
	// yaml.v3 has panicked on hostile input before; a panic here must become
	// an error like any other bad file.
	defer func() {
		if r := recover(); r != nil {
			p.add("", 0, "invalid YAML: parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add("", 0, "empty document: a topology file is a mapping with name, hosts and networks")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.add("", next.Line, "more than one YAML document: a topology file holds exactly one")
		return nil
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.add("", doc.Line, "empty document: a topology file is a mapping with name, hosts and networks")
		return nil
	}
	root = deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.add("", root.Line, "the document is %s; a topology file is a mapping with name, hosts and networks", describe(root))
		return nil
	}
	return root
}

// decodeRaw checks the shape of data and returns its raw values; nil when
// the file is not a YAML mapping at all.
func (p *problems) decodeRaw(data []byte) *rawTopology {
	root := p.document(data)
	if root == nil {
		return nil
	}
	r := &rawTopology{line: root.Line}
	var defaults, hosts, networks *yaml.Node
	p.fields(root, "", map[string]**yaml.Node{
		"name": &r.Name, "controller": &r.Controller, "directory": &r.Directory, "defaults": &defaults, "hosts": &hosts,
		"networks": &networks,
	})
	if defaults != nil {
		p.fields(defaults, "defaults", r.Defaults.fields())
	}
	if hosts == nil {
		p.add("hosts", root.Line, "required")
	} else if list := p.items(hosts, "hosts"); list != nil && len(list) == 0 {
		p.add("hosts", hosts.Line, "at least one host is required")
	} else {
		for i, n := range list {
			if h := p.rawHost(n, fmt.Sprintf("hosts[%d]", i)); h != nil {
				r.Hosts = append(r.Hosts, h)
			}
		}
	}
	for i, n := range p.items(networks, "networks") {
		if nw := p.rawNetwork(n, fmt.Sprintf("networks[%d]", i)); nw != nil {
			r.Networks = append(r.Networks, nw)
		}
	}
	return r
}

func (p *problems) rawHost(n *yaml.Node, path string) *rawHost {
	h := &rawHost{path: path, line: n.Line}
	var routes *yaml.Node
	f := h.rawSettings.fields()
	f["name"], f["vtep"], f["managed"], f["routes"] = &h.Name, &h.VTEP, &h.Managed, &routes
	f["hardware_vtep"] = &h.HardwareVTEP
	if !p.fields(n, path, f) {
		return nil
	}
	for i, rn := range p.items(routes, path+".routes") {
		rt := &rawRoute{path: fmt.Sprintf("%s.routes[%d]", path, i), line: rn.Line}
		if p.fields(rn, rt.path, map[string]**yaml.Node{"to": &rt.To, "via": &rt.Via}) {
			h.Routes = append(h.Routes, rt)
		}
	}
	return h
}

func (p *problems) rawNetwork(n *yaml.Node, path string) *rawNetwork {
	nw := &rawNetwork{path: path, line: n.Line}
	var ports *yaml.Node
	if !p.fields(n, path, map[string]**yaml.Node{"name": &nw.Name, "vni": &nw.VNI, "mtu": &nw.MTU, "ports": &ports}) {
		return nil
	}
	for i, pn := range p.items(ports, path+".ports") {
		pt := &rawPort{path: fmt.Sprintf("%s.ports[%d]", path, i), line: pn.Line}
		if p.fields(pn, pt.path, map[string]**yaml.Node{
			"host": &pt.Host, "name": &pt.Name, "type": &pt.Type, "mac": &pt.MAC, "ip": &pt.IP, "gateway": &pt.Gateway,
			"iface_id": &pt.IfaceID, "vlan": &pt.VLAN,
		}) {
			nw.Ports = append(nw.Ports, pt)
		}
	}
	return nw
}

// fields decodes mapping n: the value of each known key goes to its target
// (null values count as absent); unknown, duplicate and non-scalar keys are
// problems. It reports false when n is not a mapping.
func (p *problems) fields(n *yaml.Node, path string, targets map[string]**yaml.Node) bool {
	m := deref(n)
	if m.Kind != yaml.MappingNode {
		p.add(path, n.Line, "want a mapping, got %s", describe(m))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kd := deref(k)
		if kd.Kind != yaml.ScalarNode {
			p.add(path, k.Line, "a mapping key is %s; keys must be field names", describe(kd))
			continue
		}
		fp := join(path, kd.Value)
		if kd.ShortTag() == "!!merge" {
			p.add(fp, k.Line, "merge keys are not supported")
			continue
		}
		if first, dup := seen[kd.Value]; dup {
			p.add(fp, k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[kd.Value] = k.Line
		t, ok := targets[kd.Value]
		if !ok {
			p.add(fp, k.Line, "unknown field")
			continue
		}
		if !isNull(v) {
			*t = v
		}
	}
	return true
}

// items returns the items of sequence n (nil when n is absent or not a list,
// the latter being a problem).
func (p *problems) items(n *yaml.Node, path string) []*yaml.Node {
	if n == nil {
		return nil
	}
	s := deref(n)
	if s.Kind != yaml.SequenceNode {
		p.add(path, n.Line, "want a list, got %s", describe(s))
		return nil
	}
	if p.count += len(s.Content); p.count > maxItems {
		if !p.tooLarge {
			p.add(path, n.Line, "the file holds more than %d hosts, routes, networks and ports (counting aliases)", maxItems)
			p.tooLarge = true
		}
		return nil
	}
	if s.Content == nil {
		return []*yaml.Node{}
	}
	return s.Content
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// deref follows aliases to the anchored node. Anchors never name an alias,
// but bound the walk anyway.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	d := deref(n)
	return d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null"
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	case yaml.AliasNode:
		return "an unresolved alias"
	}
	return "nothing"
}
