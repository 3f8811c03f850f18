package controller

import (
	"fmt"
	"sort"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Health: what /healthz and /readyz answer (package internal/health serves
// them beside /metrics), and the label values every counter has from the
// start.

// maxNotReady bounds the lines /readyz lists; a thousand switches away
// make one line more, not a thousand.
const maxNotReady = 20

// NotReady lists what keeps the controller from being ready, a short line
// each: every switch of the topology must be connected and programmed (one
// reconcile succeeded, the last one included), or, for a switch this
// replica is a slave of, connected with the directory naming another live
// replica its master. Empty: ready.
func (s *Server) NotReady() []string {
	st := s.topo()
	states := map[uint64]SwitchState{}
	for _, sw := range s.Switches() {
		states[sw.DatapathID] = sw
	}
	ids := make([]switchID, 0, len(st.ids))
	for _, id := range st.ids {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].host.Name != ids[j].host.Name {
			return ids[i].host.Name < ids[j].host.Name
		}
		return ids[i].bridge < ids[j].bridge
	})
	var out []string
	for _, id := range ids {
		sw, ok := states[id.dpid]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s: not connected", id.host.Name, id.bridge))
		case sw.Role == ofcodec.RoleSlave.String() && s.liveMasterElsewhere(id.dpid):
			// Another replica is its master and programs it: connected
			// is all this replica owes it.
		case sw.Role == ofcodec.RoleSlave.String():
			out = append(out, fmt.Sprintf("%s %s: slave, no live master", id.host.Name, id.bridge))
		case !sw.Synced:
			out = append(out, fmt.Sprintf("%s %s: connected, not programmed yet%s", id.host.Name, id.bridge, lastError(sw)))
		case sw.LastError != "":
			out = append(out, fmt.Sprintf("%s %s: the last reconcile failed%s", id.host.Name, id.bridge, lastError(sw)))
		}
	}
	if len(out) > maxNotReady {
		out = append(out[:maxNotReady], fmt.Sprintf("... and %d more", len(out)-maxNotReady))
	}
	return out
}

// liveMasterElsewhere reports whether the directory (connected) names
// another live replica master of dpid: only then does a slave's switch
// get programmed.
func (s *Server) liveMasterElsewhere(dpid uint64) bool {
	if s.dir == nil || !s.dir.Connected() {
		return false
	}
	row, has := s.dir.Owner(dpid)
	return has && row.Master != "" && row.Master != s.name && s.dir.Alive(row.Master)
}

func lastError(sw SwitchState) string {
	if sw.LastError == "" {
		return ""
	}
	return " (" + sw.LastError + ")"
}

// initHostMetrics makes the per-switch counters of every switch st serves
// exist at 0, and the other labelled counters at every value they can
// take, so that rates and alerts work before the first event.
func (s *Server) initHostMetrics(st *topoState) {
	m := s.met
	for _, id := range st.ids {
		host := id.host.Name
		m.flowMods.WithLabelValues(host, id.bridge)
		m.bundles.WithLabelValues(host, id.bridge)
		m.reconErrors.WithLabelValues(host, id.bridge)
		if id.bridge != topology.BridgeTun {
			continue
		}
		for _, r := range []string{resultLearned, resultMoved, resultRefreshed, resultRateLimited, resultFull,
			resultIgnored, resultMalformed, resultNotReady, resultConflict, resultDamped} {
			m.packetIns.WithLabelValues(host, r)
		}
	}
	for _, k := range []EventKind{EventLearned, EventMoved, EventIPLearned, EventForgotten, EventAdopted, EventDeclared, EventUndeclared} {
		m.macEvents.WithLabelValues(k.String())
	}
}
