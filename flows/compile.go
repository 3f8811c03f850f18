package flows

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
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
	// Tables 2 and 21 both go over h's networks and their peers: found
	// once (FloodPeers builds a set of a network's hosts each time).
	c.nets = t.NetworksOn(h)
	c.peers = make([][]*topology.Host, len(c.nets))
	for i, nw := range c.nets {
		c.peers[i] = t.FloodPeers(h, nw)
	}
	parts := [][]Flow{c.classify(), c.fromLocal(), c.fromTunnel(), c.unicast(), c.flood(), c.arp(), missFlows(Pipeline(), h.Mode)}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	tun := make([]Flow, 0, n)
	for _, p := range parts {
		tun = append(tun, p...)
	}
	brInt := missFlows(IntPipeline(), h.Mode)
	p := Program{Int: finish(brInt), Tun: finish(tun)}
	// A violation of the declared pipeline is a bug of this compiler.
	if err := errors.Join(Validate(p.Tun), ValidateInt(p.Int)); err != nil {
		return Program{}, fmt.Errorf("compiling flows for host %s: %w", h.Name, err)
	}
	return p, nil
}

type compiler struct {
	t     *topology.Topology
	h     *topology.Host
	alloc topology.Allocation
	nets  []*topology.Network // the networks h has ports in, by VNI
	peers [][]*topology.Host  // FloodPeers of each of nets
}

// check makes sure the allocation covers every network and peer of h.
func (c compiler) check() error {
	if missing := AllocationLacks(c.t, c.h, c.alloc); len(missing) > 0 {
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
	out := byDestination(TableFromPort, PriorityClassify, Match{}, report)
	// ARP and neighbour discovery whose (sender MAC, sender IP) the
	// controller does not know yet are reported, so it learns IPs as well
	// as MACs; known pairs skip this (CompileEndpoints, PriorityKnownARP).
	for _, m := range announcements(Match{}) {
		out = append(out, Flow{Table: TableFromPort, Priority: PriorityARPReport, Match: m,
			Actions: []Action{report, GotoTable{TableARP}}})
	}
	return out
}

// fromTunnel builds table 2: a frame of network n is accepted only from the
// tunnels of peers that have ports in n, tagged with n's local VLAN, learned
// (learn mode) and sent to br-int. It never reaches table 21, so frames are
// never flooded from one tunnel to another. In controller mode, frames from
// an unmanaged peer (which has no switch to report its own VMs) are
// reported as table 1 reports local ones: unknown sources, and ARP and ND of
// unknown (MAC, IP) pairs; CompileEndpoints stops the reports of known ones.
func (c compiler) fromTunnel() []Flow {
	nets, peers := c.nets, c.peers
	n := 0
	for i := range nets {
		for _, p := range peers[i] {
			n++
			if c.h.Mode != topology.ModeLearn && !p.Managed {
				n += 3 // the announcements reported
			}
		}
	}
	out := make([]Flow, 0, n)
	for i, nw := range nets {
		vlan := c.alloc.LocalVLAN[nw.VNI]
		// The actions depend on the network alone: one list for all its
		// peers (capped, so that an append copies it).
		var learn, plain, report []Action
		for _, p := range peers[i] {
			m := Match{HasTunID: true, TunID: uint64(nw.VNI), InPort: c.alloc.TunnelOFPort[p.Name]}
			switch {
			case c.h.Mode == topology.ModeLearn:
				if learn == nil {
					learn = slices.Clip(fromTunnelActions(vlan, Learn{Table: TableUnicast, HardTimeout: c.h.LearnTimeout,
						Priority: PriorityLearned, Cookie: CookieLearned | uint64(nw.VNI)}))
				}
				out = append(out, Flow{Table: TableFromTun, Priority: PriorityClassify, Match: m, Actions: learn})
			case !p.Managed:
				// The copy is taken after tagging: the controller maps
				// the VLAN to the network as for table 1's reports.
				if report == nil {
					report = slices.Clip(fromTunnelActions(vlan, Controller{MaxLen: PacketInBytes}))
				}
				out = append(out, Flow{Table: TableFromTun, Priority: PriorityClassify, Match: m, Actions: report})
				for _, am := range announcements(m) {
					out = append(out, Flow{Table: TableFromTun, Priority: PriorityARPReport, Match: am, Actions: report})
				}
			default:
				if plain == nil {
					plain = slices.Clip(fromTunnelActions(vlan))
				}
				out = append(out, Flow{Table: TableFromTun, Priority: PriorityClassify, Match: m, Actions: plain})
			}
		}
	}
	return out
}

// arp builds tables 3 and 4 (controller mode). Table 3: ARP and ND that no
// flow of CompileEndpoints took goes on as any frame would, except DAD
// (a solicitation from ::), which is flooded and never answered: the
// owner, wherever it is, answers it. Table 4 completes the advertisements
// the ND responders of table 3 build: the target link-layer address is the
// MAC they answer with, now the packet's source.
func (c compiler) arp() []Flow {
	if c.h.Mode != topology.ModeController {
		return nil
	}
	dad := Match{EthType: EthTypeIPv6, IPProto: IPProtoICMPv6, IPv6Src: netip.IPv6Unspecified(), HasICMPType: true, ICMPType: ICMPv6NS}
	na := Match{EthType: EthTypeIPv6, IPProto: IPProtoICMPv6, HasICMPType: true, ICMPType: ICMPv6NA}
	return append(byDestination(TableARP, PriorityClassify, Match{}),
		Flow{Table: TableARP, Priority: PriorityGARP, Match: dad, Actions: []Action{GotoTable{TableFlood}}},
		Flow{Table: TableNDAnswer, Priority: PriorityClassify, Match: na,
			Actions: []Action{Move{Src: FieldEthSrc, Dst: FieldNDTLL}, Output{Port: PortInPort}}})
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
	for i, n := range c.nets {
		peers := c.peers[i]
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
func missFlows(pipeline []Table, mode topology.Mode) []Flow {
	var out []Flow
	for _, tb := range pipeline {
		if tb.Unreached || tb.ControllerOnly && mode != topology.ModeController {
			continue
		}
		f := Flow{Table: tb.ID, Priority: PriorityMiss}
		switch tb.Miss {
		case MissNext:
			f.Actions = []Action{GotoTable{tb.Next[0]}}
		case MissNormal:
			f.Actions = []Action{Output{Port: PortNormal}}
		}
		out = append(out, f)
	}
	return out
}

// finish gives every flow its content cookie and sorts the list. No flow
// is rendered: Sort orders content cookies without their texts.
func finish(fl []Flow) []Flow {
	setContentCookies(fl, CookieOwned)
	Sort(fl)
	return fl
}

// Sort orders flows by table, then priority (highest first), then text: the
// order `ovs-vxctl flows` prints and golden files hold. Texts of one table
// and priority first differ in their cookies' hex digits, so flows with
// distinct non-zero cookies (content cookies: every finished flow) are
// ordered without rendering; a text is rendered only for the other ties,
// and once. Flows of equal text are alike in every respect, so the sort
// need not be stable (a stable one costs 5x at 100,000 flows). It sorts
// 16-byte keys, not the flows, which are 15 times as large and were
// compared through cache misses.
func Sort(fl []Flow) {
	keys := make([]sortKey, len(fl))
	content := true // every cookie has 16 hex digits: hex order is numeric order
	for i := range fl {
		keys[i] = sortKey{cookie: fl[i].Cookie, i: int32(i), place: uint32(fl[i].Table)<<16 | uint32(^fl[i].Priority)}
		content = content && fl[i].Cookie>>60 != 0
	}
	var texts []string // "" until rendered (a text never is); made at the first tie
	text := func(i int32) string {
		if texts == nil {
			texts = make([]string, len(fl))
		}
		if texts[i] == "" {
			texts[i] = fl[i].String()
		}
		return texts[i]
	}
	byText := func(a, b sortKey) int { return strings.Compare(text(a.i), text(b.i)) }
	if content && len(keys) > 256 {
		keys = radixSort(keys)
		// Equal cookies of one table and priority are next to each other:
		// those alone are ordered by text.
		for i := 0; i < len(keys); {
			j := i + 1
			for j < len(keys) && keys[j].place == keys[i].place && keys[j].cookie == keys[i].cookie {
				j++
			}
			if j-i > 1 {
				slices.SortFunc(keys[i:j], byText)
			}
			i = j
		}
	} else {
		slices.SortFunc(keys, func(a, b sortKey) int {
			if a.place != b.place {
				return cmp.Compare(a.place, b.place)
			}
			if a.cookie != 0 && b.cookie != 0 && a.cookie != b.cookie {
				return compareHex(a.cookie, b.cookie)
			}
			return byText(a, b)
		})
	}
	permute(fl, keys)
}

// radixSort orders keys by place, then cookie, as numbers: a byte at a
// time from the least significant, skipping the bytes all keys share (the
// cookies' owner, most of the place). At 100,000 flows it takes a fifth of
// a comparison sort's time.
func radixSort(keys []sortKey) []sortKey {
	tmp := make([]sortKey, len(keys))
	for d := range 11 { // 8 bytes of cookie, then 3 of place
		digit := func(k *sortKey) int {
			if d < 8 {
				return int(k.cookie >> (8 * d) & 0xff)
			}
			return int(k.place >> (8 * (d - 8)) & 0xff)
		}
		var count [256]int
		for i := range keys {
			count[digit(&keys[i])]++
		}
		if count[digit(&keys[0])] == len(keys) {
			continue // every key has this byte
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for i := range keys {
			b := digit(&keys[i])
			tmp[count[b]] = keys[i]
			count[b]++
		}
		keys, tmp = tmp, keys
	}
	return keys
}

// sortKey is what Sort compares of flow i without rendering it: place is
// the table, then the priority inverted (highest first).
type sortKey struct {
	cookie uint64
	i      int32
	place  uint32
}

// permute moves fl[keys[k].i] to fl[k] for every k, in place, one cycle of
// the permutation at a time: each flow is moved once, where a sorted copy
// allocates and clears as much again and copies twice. It spoils keys.
func permute(fl []Flow, keys []sortKey) {
	for start := range keys {
		if keys[start].i < 0 || int(keys[start].i) == start {
			continue
		}
		tmp := fl[start]
		k := start
		for {
			from := int(keys[k].i)
			keys[k].i = -1
			if from == start {
				fl[k] = tmp
				break
			}
			fl[k] = fl[from]
			k = from
		}
	}
}

// compareHex compares a and b as their hex digits (no leading zeros)
// compare as strings, which is how their "cookie=0x..., " texts compare:
// a shorter number that is a prefix of the longer comes first, as the ','
// after it sorts before any digit.
func compareHex(a, b uint64) int {
	la, lb := (bits.Len64(a)+3)/4, (bits.Len64(b)+3)/4
	switch {
	case la < lb:
		return cmp.Or(cmp.Compare(a, b>>(4*(lb-la))), -1)
	case la > lb:
		return cmp.Or(cmp.Compare(a>>(4*(la-lb)), b), 1)
	}
	return cmp.Compare(a, b)
}
