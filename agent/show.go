package agent

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Show reads what ovs-vxctl configured on this host from OVSDB. Without a
// topology (o.Topology nil) it finds the owner from br-tun's marks.
func Show(ctx context.Context, o Options) (*ovsdb.State, error) {
	db, err := ovsdb.Connect(ctx, o.DB, o.Log, ovsdb.WithTLSFiles(o.DBTLS))
	if err != nil {
		return nil, err // ovsdb.Connect names the endpoint
	}
	defer db.Close()
	t, h, err := o.owner(ctx, db)
	if err != nil {
		return nil, err
	}
	return db.Show(ctx, t, h)
}

// owner is the topology and host to act for: the options', or br-tun's marks.
func (o Options) owner(ctx context.Context, db *ovsdb.Client) (*topology.Topology, *topology.Host, error) {
	if o.Topology != nil && o.Host != nil {
		return o.Topology, o.Host, nil
	}
	own, err := db.FindOwner(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &topology.Topology{Name: own.Topology}, &topology.Host{Name: own.Host}, nil
}

// FDBEntry is one entry of br-tun's unicast table (table 20).
type FDBEntry struct {
	MAC         string `json:"mac"`
	VNI         uint32 `json:"vni"`
	LocalVLAN   int    `json:"local_vlan"`
	Peer        string `json:"peer"`
	RemoteVTEP  string `json:"remote_vtep"`
	OFPort      uint32 `json:"ofport"`
	Origin      string `json:"origin"` // "learned", "installed" (by the controller) or "local" (behind a port of this host)
	HardTimeout uint16 `json:"hard_timeout,omitempty"`
	AgeSeconds  uint32 `json:"age_seconds"`
	// IPs are the addresses the controller answers ARP and neighbour
	// discovery for on the MAC's behalf (controller mode).
	IPs []string `json:"ips,omitempty"`
	// Port is, for a local entry, the br-int port the MAC is behind
	// (OFPort is then its number on br-int).
	Port string `json:"port,omitempty"`
}

// FDB lists br-tun's unicast entries, learned (learn mode) or installed by
// the controller, with the peer each one points at and the IPs the
// controller answers for, then the MACs behind this host's own ports
// (br-int's MAC table, and what the controller knows here). vni 0 lists
// every VNI.
func FDB(ctx context.Context, o Options, vni uint32) ([]FDBEntry, error) {
	st, err := Show(ctx, o)
	if err != nil {
		return nil, err
	}
	byPort := map[int]ovsdb.PeerState{}
	for _, p := range st.Peers {
		byPort[p.OFPort] = p
	}
	vlanOf := map[uint32]int{}
	for _, n := range st.Networks {
		vlanOf[n.VNI] = n.LocalVLAN
	}
	sw, err := openflow.Dial(ctx, o.mgmt(topology.BridgeTun), o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to br-tun's management socket: %w", err)
	}
	defer sw.Close()
	var out []FDBEntry
	var ctlFlows []flows.Flow
	for _, origin := range []struct {
		cookie uint64
		name   string
	}{{flows.CookieLearned, "learned"}, {flows.CookieController, "installed"}} {
		dumped, err := sw.DumpDecoded(ctx, origin.cookie, flows.CookieOwnerMask)
		if err != nil {
			return nil, fmt.Errorf("dumping br-tun's table %d: %w", flows.TableUnicast, err)
		}
		if origin.cookie == flows.CookieController {
			for _, d := range dumped {
				ctlFlows = append(ctlFlows, d.Flow)
			}
		}
		for _, d := range dumped {
			u, ok := flows.UnicastEntryOf(d.Flow)
			if !ok {
				continue
			}
			e := FDBEntry{MAC: u.MAC.String(), VNI: u.VNI, OFPort: u.OFPort, Origin: origin.name,
				HardTimeout: d.Flow.HardTimeout, AgeSeconds: d.DurationSec}
			if vni != 0 && e.VNI != vni {
				continue
			}
			e.LocalVLAN = vlanOf[e.VNI]
			if p, ok := byPort[int(e.OFPort)]; ok {
				e.Peer, e.RemoteVTEP = p.Peer, p.RemoteIP
			}
			out = append(out, e)
		}
	}
	eps := controllerEndpoints(ctlFlows, st.Host, st)
	for i := range out {
		out[i].IPs = ipStrings(eps[endpointKey{out[i].VNI, out[i].MAC, out[i].Peer}])
	}
	out = append(out, localEntries(ctx, o, st.Host, st, eps, vni)...)
	slices.SortFunc(out, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.Origin, b.Origin))
	})
	return out, nil
}
