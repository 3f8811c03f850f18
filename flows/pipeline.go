package flows

// Table numbers of the br-tun pipeline (spec/pipeline.md). They are fixed by
// the contract; priorities and cookies are this package's design.
const (
	TableClassify uint8 = 0  // classify by in_port
	TableFromPort uint8 = 1  // from br-int (the patch port)
	TableFromTun  uint8 = 2  // from a VXLAN port
	TableARP      uint8 = 3  // controller mode: ARP and ND answered or kept local
	TableNDAnswer uint8 = 4  // controller mode: a solicitation table 3 turned into an advertisement gets its link-layer option
	TableUnicast  uint8 = 20 // (local VLAN, dl_dst) -> VNI, tunnel port
	TableFlood    uint8 = 21 // local VLAN -> VNI, every peer of the network
	// TableAllocation holds flows no packet ever reaches (no table
	// continues there): one per network, advertising the host's local VLAN
	// of each VNI to a controller, which has no other way to read the
	// host's OVSDB. Apply installs them in controller mode; the controller
	// only reads them (CompileAllocation, AllocationFromFlows).
	TableAllocation uint8 = 250
)

// Miss is what a table does with a packet no other flow matched.
type Miss int

const (
	// MissDrop drops the packet.
	MissDrop Miss = iota
	// MissNext continues in the table's first Next table.
	MissNext
	// MissNormal switches the packet with OVS's NORMAL action (br-int).
	MissNormal
)

// Table declares one stage of a pipeline: its purpose, the tables its flows
// may continue in, its miss behaviour, and what its flows may match and at
// which priorities. The compiler installs each miss flow from this
// declaration, and Validate checks every flow against it.
type Table struct {
	ID      uint8
	Name    string
	Purpose string
	Next    []uint8
	Miss    Miss
	// Fields are the match fields the table's flows may match.
	Fields []MatchField
	// Priorities are the priorities the table's flows may have;
	// PriorityMiss is the miss flow's.
	Priorities []uint16
	// ControllerOnly tables exist in controller mode only.
	ControllerOnly bool
	// Unreached tables are in no table's Next: no packet gets there, their
	// flows only hold data, and they have no miss flow.
	Unreached bool
}

// Pipeline is br-tun's pipeline, declared once.
func Pipeline() []Table {
	return []Table{
		{ID: TableClassify, Name: "classify", Miss: MissDrop, Next: []uint8{TableFromPort, TableFromTun},
			Fields:     []MatchField{MatchInPort},
			Priorities: []uint16{PriorityMiss, PriorityClassify},
			Purpose:    "by in_port: the patch port goes to 1, each tunnel port to 2, anything else is dropped"},
		{ID: TableFromPort, Name: "from-local", Miss: MissDrop, Next: []uint8{TableARP, TableUnicast, TableFlood},
			Fields:     []MatchField{MatchEthType, MatchIPProto, MatchVLAN, MatchEthSrc, MatchEthDst, MatchARPSPA, MatchIPv6Src, MatchICMPType},
			Priorities: []uint16{PriorityMiss, PriorityClassify, PriorityKnownSource, PriorityARPReport, PriorityKnownARP},
			Purpose:    "frames from br-int: unicast dl_dst to 20, multicast and broadcast to 21; controller mode: unknown sources, and ARP and neighbour discovery from unknown (MAC, IP) pairs, reported; ARP and ND to 3"},
		{ID: TableFromTun, Name: "from-tunnel", Miss: MissDrop, Next: nil,
			Fields:     []MatchField{MatchTunID, MatchInPort, MatchEthType, MatchIPProto, MatchEthSrc, MatchARPSPA, MatchIPv6Src, MatchICMPType},
			Priorities: []uint16{PriorityMiss, PriorityClassify, PriorityKnownSource, PriorityARPReport, PriorityKnownARP},
			Purpose:    "frames from a tunnel: known VNI -> local VLAN, learn the source into 20 (learn mode), out the patch port; unknown VNI dropped; never to 21; controller mode: from an unmanaged peer, unknown sources and unknown (MAC, IP) pairs reported as in table 1"},
		{ID: TableARP, Name: "arp-nd", Miss: MissDrop, Next: []uint8{TableNDAnswer, TableUnicast, TableFlood}, ControllerOnly: true,
			Fields: []MatchField{MatchEthType, MatchIPProto, MatchVLAN, MatchEthSrc, MatchEthDst, MatchARPSPA, MatchARPTPA, MatchARPOp,
				MatchIPv6Src, MatchICMPType, MatchNDTarget},
			Priorities: []uint16{PriorityMiss, PriorityClassify, PriorityARP, PriorityGARP},
			Purpose:    "controller mode: ARP requests and neighbour solicitations for known remote IPs answered on this host, for local IPs kept on it; gratuitous ARP, DAD and an IP's owner asking for it flooded, never answered; other ARP and ND to 20 or 21 by dl_dst"},
		{ID: TableNDAnswer, Name: "nd-answer", Miss: MissDrop, Next: nil, ControllerOnly: true,
			Fields:     []MatchField{MatchEthType, MatchIPProto, MatchICMPType},
			Priorities: []uint16{PriorityMiss, PriorityClassify},
			Purpose:    "controller mode: an advertisement table 3 made from a solicitation gets its target link-layer address (its new source MAC) and goes back out IN_PORT"},
		{ID: TableUnicast, Name: "unicast", Miss: MissNext, Next: []uint8{TableFlood},
			Fields:     []MatchField{MatchVLAN, MatchEthDst},
			Priorities: []uint16{PriorityMiss, PriorityLearned, PriorityInstalled},
			Purpose:    "(local VLAN, dl_dst) -> VNI and that peer's tunnel port; learned or installed; a miss floods"},
		{ID: TableFlood, Name: "flood", Miss: MissDrop, Next: nil,
			Fields:     []MatchField{MatchVLAN},
			Priorities: []uint16{PriorityMiss, PriorityClassify},
			Purpose:    "per local VLAN -> VNI and the tunnel ports of exactly the peers with ports in that network"},
		{ID: TableAllocation, Name: "allocation", Unreached: true, ControllerOnly: true,
			Fields:     []MatchField{MatchTunID, MatchVLAN},
			Priorities: []uint16{PriorityClassify},
			Purpose:    "controller mode: the advertisement of the host's local VLANs, one flow per VNI, read by the controller; no packet gets here"},
	}
}

// IntPipeline is br-int's pipeline: one table switching with NORMAL (the
// bridge is fail_mode=secure, so even that flow must be installed).
func IntPipeline() []Table {
	return []Table{{ID: 0, Name: "normal", Miss: MissNormal, Priorities: []uint16{PriorityMiss},
		Purpose: "access ports tagged with their network's local VLAN; NORMAL switching keeps tenants apart"}}
}

// PipelineTable returns the declaration of br-tun's table id, or nil.
func PipelineTable(id uint8) *Table {
	for _, tb := range Pipeline() {
		if tb.ID == id {
			return &tb
		}
	}
	return nil
}

// Priorities of the compiled flows. Learned entries sit below installed ones
// so a declared MAC always wins over a learned one.
const (
	PriorityMiss      uint16 = 0
	PriorityClassify  uint16 = 1
	PriorityLearned   uint16 = 1
	PriorityInstalled uint16 = 2
)
