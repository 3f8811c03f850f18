package flows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Bridges named by the compiled program.
const (
	BridgeInt = "br-int"
	BridgeTun = "br-tun"
)

// Program is the compiled flows of one host, per bridge, each list sorted as
// Sort leaves it.
type Program struct {
	Int []Flow // br-int: NORMAL switching under fail_mode=secure
	Tun []Flow // br-tun: the pipeline
}

// Compile turns a topology into the flows of host h. It is a pure,
// deterministic function: the same topology, host and allocation always give
// the same flows, in the same order. alloc must come from t.Allocate(h, ...).
func Compile(t *topology.Topology, h *topology.Host, alloc topology.Allocation) (Program, error) {
	if !h.Managed {
		return Program{}, fmt.Errorf("compiling flows: host %s is not managed by ovs-vxctl", h.Name)
	}
	c := compiler{t: t, h: h, alloc: alloc}
	if err := c.check(); err != nil {
		return Program{}, fmt.Errorf("compiling flows for host %s: %w", h.Name, err)
	}
	var tun []Flow
	tun = append(tun, c.classify()...)
	tun = append(tun, c.fromLocal()...)
	tun = append(tun, c.fromTunnel()...)
	tun = append(tun, c.unicast()...)
	tun = append(tun, c.flood()...)
	tun = append(tun, c.arp()...)
	tun = append(tun, missFlows(h.Mode)...)
	brInt := []Flow{{Table: 0, Priority: PriorityMiss, Actions: []Action{Output{Port: PortNormal}}}}
	return Program{Int: finish(brInt), Tun: finish(tun)}, nil
}

type compiler struct {
	t     *topology.Topology
	h     *topology.Host
	alloc topology.Allocation
}

// check makes sure the allocation covers every network and peer of h.
func (c compiler) check() error {
	var missing []string
	for _, n := range c.t.NetworksOn(c.h) {
		if _, ok := c.alloc.LocalVLAN[n.VNI]; !ok {
			missing = append(missing, fmt.Sprintf("local VLAN of VNI %d", n.VNI))
		}
	}
	for _, p := range c.t.Peers(c.h) {
		if _, ok := c.alloc.TunnelOFPort[p.Name]; !ok {
			missing = append(missing, "tunnel port of peer "+p.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("allocation lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// classify builds table 0: the patch port to 1, each tunnel port to 2.
func (c compiler) classify() []Flow {
	out := []Flow{{Table: TableClassify, Priority: PriorityClassify,
		Match:   Match{InPort: topology.PatchOFPort},
		Actions: []Action{GotoTable{TableFromPort}}}}
	for _, p := range c.t.Peers(c.h) {
		out = append(out, Flow{Table: TableClassify, Priority: PriorityClassify,
			Match:   Match{InPort: c.alloc.TunnelOFPort[p.Name]},
			Actions: []Action{GotoTable{TableFromTun}}})
	}
	return out
}

// fromLocal builds table 1: unicast to 20, group addresses to 21. In
// controller mode these are the flows for sources the controller does not
// know yet: the frame goes on as usual (nothing is lost) and a copy of its
// headers goes to the controller, which learns the source and installs
// higher-priority known-source flows (CompileEndpoints) that stop the reports.
func (c compiler) fromLocal() []Flow {
	if c.h.Mode != topology.ModeController {
		return byDestination(TableFromPort, PriorityClassify, Match{})
	}
	report := Controller{MaxLen: PacketInBytes}
	return append(byDestination(TableFromPort, PriorityClassify, Match{}, report),
		// ARP whose (sender MAC, sender IP) the controller does not know
		// yet is reported, so it learns IPs as well as MACs; known pairs
		// skip this (CompileEndpoints, PriorityKnownARP).
		Flow{Table: TableFromPort, Priority: PriorityARPReport,
			Match:   Match{EthType: EthTypeARP},
			Actions: []Action{report, GotoTable{TableARP}}})
}

// fromTunnel builds table 2: a frame of network n is accepted only from the
// tunnels of peers that have ports in n, tagged with n's local VLAN, learned
// (learn mode) and sent to br-int. It never reaches table 21, so frames are
// never flooded from one tunnel to another.
func (c compiler) fromTunnel() []Flow {
	var out []Flow
	for _, n := range c.t.NetworksOn(c.h) {
		vlan := c.alloc.LocalVLAN[n.VNI]
		for _, p := range c.t.FloodPeers(c.h, n) {
			actions := []Action{PushVLAN{}, SetVLANVID{VID: vlan}}
			if c.h.Mode == topology.ModeLearn {
				actions = append(actions, Learn{Table: TableUnicast, HardTimeout: c.h.LearnTimeout,
					Priority: PriorityLearned, Cookie: CookieLearned | uint64(n.VNI)})
			}
			actions = append(actions, Output{Port: topology.PatchOFPort})
			out = append(out, Flow{Table: TableFromTun, Priority: PriorityClassify,
				Match:   Match{HasTunID: true, TunID: uint64(n.VNI), InPort: c.alloc.TunnelOFPort[p.Name]},
				Actions: actions})
		}
	}
	return out
}

// arp builds table 3 (controller mode): ARP that no responder or local-keep
// flow of CompileEndpoints took goes on as any frame would.
func (c compiler) arp() []Flow {
	if c.h.Mode != topology.ModeController {
		return nil
	}
	return byDestination(TableARP, PriorityClassify, Match{})
}

// byDestination splits frames matching m by destination: unicast dl_dst
// continues in table 20, multicast and broadcast in 21, each after the
// actions before.
func byDestination(table uint8, priority uint16, m Match, before ...Action) []Flow {
	uni, group := m, m
	uni.EthDst, uni.EthDstMask = Unicast, GroupBit
	group.EthDst, group.EthDstMask = GroupBit, GroupBit
	return []Flow{
		{Table: table, Priority: priority, Match: uni, Actions: append(slices.Clone(before), GotoTable{TableUnicast})},
		{Table: table, Priority: priority, Match: group, Actions: append(slices.Clone(before), GotoTable{TableFlood})},
	}
}

// unicast builds table 20's installed entries. In learn mode there are none:
// learn() fills the table at run time.
func (c compiler) unicast() []Flow {
	return nil
}

// flood builds table 21: per network, the VNI and every peer with ports in it.
func (c compiler) flood() []Flow {
	var out []Flow
	for _, n := range c.t.NetworksOn(c.h) {
		peers := c.t.FloodPeers(c.h, n)
		if len(peers) == 0 {
			continue // the network never leaves this host
		}
		ports := make([]uint32, 0, len(peers))
		for _, p := range peers {
			ports = append(ports, c.alloc.TunnelOFPort[p.Name])
		}
		slices.Sort(ports)
		actions := []Action{PopVLAN{}, SetTunID{ID: uint64(n.VNI)}}
		for _, port := range ports {
			actions = append(actions, Output{Port: port})
		}
		out = append(out, Flow{Table: TableFlood, Priority: PriorityClassify,
			Match:   Match{HasVLAN: true, VLAN: c.alloc.LocalVLAN[n.VNI]},
			Actions: actions})
	}
	return out
}

// missFlows installs each table's declared miss behaviour.
func missFlows(mode topology.Mode) []Flow {
	var out []Flow
	for _, tb := range Pipeline {
		if tb.ControllerOnly && mode != topology.ModeController {
			continue
		}
		f := Flow{Table: tb.ID, Priority: PriorityMiss}
		if tb.Miss == MissNext {
			f.Actions = []Action{GotoTable{tb.Next[0]}}
		}
		out = append(out, f)
	}
	return out
}

// finish gives every flow its content cookie and sorts the list.
func finish(fl []Flow) []Flow {
	for i := range fl {
		fl[i] = WithContentCookie(fl[i], CookieOwned)
	}
	Sort(fl)
	return fl
}

// Sort orders flows by table, then priority (highest first), then text: the
// order `ovs-vxctl flows` prints and golden files hold. Each flow's text is
// rendered once, not once per comparison.
func Sort(fl []Flow) {
	type keyed struct {
		f    Flow
		text string
	}
	ks := make([]keyed, len(fl))
	for i, f := range fl {
		ks[i] = keyed{f, f.String()}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		if c := cmp.Compare(a.f.Table, b.f.Table); c != 0 {
			return c
		}
		if c := cmp.Compare(b.f.Priority, a.f.Priority); c != 0 {
			return c
		}
		return strings.Compare(a.text, b.text)
	})
	for i := range ks {
		fl[i] = ks[i].f
	}
}
