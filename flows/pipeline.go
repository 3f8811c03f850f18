package flows

// Table numbers of the br-tun pipeline (spec/pipeline.md). They are fixed by
// the contract; priorities and cookies are this package's design.
const (
	TableClassify uint8 = 0  // classify by in_port
	TableFromPort uint8 = 1  // from br-int (the patch port)
	TableFromTun  uint8 = 2  // from a VXLAN port
	TableARP      uint8 = 3  // controller mode: ARP answered or kept local
	TableUnicast  uint8 = 20 // (local VLAN, dl_dst) -> VNI, tunnel port
	TableFlood    uint8 = 21 // local VLAN -> VNI, every peer of the network
)

// Miss is what a table does with a packet no other flow matched.
type Miss int

const (
	// MissDrop drops the packet.
	MissDrop Miss = iota
	// MissNext continues in the table's first Next table.
	MissNext
)

// Table declares one stage of the pipeline: its purpose, the tables its flows
// may continue in, and its miss behaviour. The compiler installs each miss
// flow from this declaration, and tests check every compiled goto_table
// against Next.
type Table struct {
	ID      uint8
	Name    string
	Purpose string
	Next    []uint8
	Miss    Miss
	// ControllerOnly tables exist in controller mode only.
	ControllerOnly bool
}

// Pipeline is br-tun's pipeline, declared once.
var Pipeline = []Table{
	{ID: TableClassify, Name: "classify", Miss: MissDrop, Next: []uint8{TableFromPort, TableFromTun},
		Purpose: "by in_port: the patch port goes to 1, each tunnel port to 2, anything else is dropped"},
	{ID: TableFromPort, Name: "from-local", Miss: MissDrop, Next: []uint8{TableARP, TableUnicast, TableFlood},
		Purpose: "frames from br-int: unicast dl_dst to 20, multicast and broadcast to 21; controller mode: unknown sources and ARP from unknown (MAC, IP) pairs reported, ARP to 3"},
	{ID: TableFromTun, Name: "from-tunnel", Miss: MissDrop, Next: nil,
		Purpose: "frames from a tunnel: known VNI -> local VLAN, learn the source into 20 (learn mode), out the patch port; unknown VNI dropped; never to 21"},
	{ID: TableARP, Name: "arp", Miss: MissDrop, Next: []uint8{TableUnicast, TableFlood}, ControllerOnly: true,
		Purpose: "controller mode: ARP requests for known remote IPs answered on this host, for local IPs kept on it; other ARP to 20 or 21 by dl_dst"},
	{ID: TableUnicast, Name: "unicast", Miss: MissNext, Next: []uint8{TableFlood},
		Purpose: "(local VLAN, dl_dst) -> VNI and that peer's tunnel port; learned or installed; a miss floods"},
	{ID: TableFlood, Name: "flood", Miss: MissDrop, Next: nil,
		Purpose: "per local VLAN -> VNI and the tunnel ports of exactly the peers with ports in that network"},
}

// PipelineTable returns the declaration of table id, or nil.
func PipelineTable(id uint8) *Table {
	for i := range Pipeline {
		if Pipeline[i].ID == id {
			return &Pipeline[i]
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
