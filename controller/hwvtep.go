package controller

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Hardware VTEPs in controller mode. A switch speaks OVSDB, not OpenFlow:
// for each one the controller runs a loop (beside the sessions) that reads
// the MACs the switch learned behind its ports (Ucast_Macs_Local) into the
// knowledge, as packet-ins are on OVS hosts, and writes what the knowledge
// knows of the other hosts into its Ucast_Macs_Remote. The loop only calls
// into the Knowledge and then Server.changed, never holding a lock, so the
// lock order of doc.go holds.

// hwvtepPoll is how often the controller reads a hardware VTEP's database.
// Switches (and the emulator) report learned MACs about once a second.
const hwvtepPoll = 250 * time.Millisecond

// hwvtepBackoff bounds the wait between attempts to reach a switch.
const (
	hwvtepMinBackoff = 500 * time.Millisecond
	hwvtepMaxBackoff = 5 * time.Second
)

// hardwareVTEPs are the hardware VTEPs in controller mode.
func (s *Server) hardwareVTEPs() []*topology.Host {
	var out []*topology.Host
	for _, h := range s.topo().t.HardwareVTEPs() {
		if h.Mode == topology.ModeController {
			out = append(out, h)
		}
	}
	return out
}

// runHardwareVTEP drives hardware VTEP h until ctx ends, connecting again
// (with backoff) whenever its database cannot be reached.
func (s *Server) runHardwareVTEP(ctx context.Context, h *topology.Host) {
	log := s.log.With(zap.String("hardware_vtep", h.Name), zap.String("ovsdb", h.HardwareVTEP.OVSDB))
	if strings.HasPrefix(h.HardwareVTEP.OVSDB, "ssl:") {
		log.Warn("the controller cannot reach a hardware VTEP's ssl: database yet: its unicast tables are left to flooding")
		return
	}
	wait := hwvtepMinBackoff
	for ctx.Err() == nil {
		c, err := hwvtep.Connect(ctx, h.HardwareVTEP.OVSDB, nil, log)
		if err == nil {
			log.Info("hardware VTEP connected")
			wait = hwvtepMinBackoff
			err = s.syncHardwareVTEP(ctx, c, h, log)
			c.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if s.logOnce.allow("hwvtep/"+h.Name, time.Now()) {
			log.Warn("hardware VTEP unreachable, retrying", zap.Error(err), zap.Duration("in", wait))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, hwvtepMaxBackoff)
	}
}

// syncHardwareVTEP polls the switch through c until an error or ctx ends.
// Until the first reconciles are released (every switch had its chance to
// connect and be adopted) it only reads: the knowledge is not complete yet.
func (s *Server) syncHardwareVTEP(ctx context.Context, c *hwvtep.Client, h *topology.Host, log *zap.Logger) error {
	tick := time.NewTicker(hwvtepPoll)
	defer tick.Stop()
	prev := map[MACKey]bool{}
	for {
		local, changes, err := c.Sync(ctx, s.topo().t.Name, h.Name, s.remoteMACs(h), !s.isReleased())
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			log.Info("hardware VTEP unicast table updated", zap.Strings("changes", changes))
		}
		prev = s.observeLocal(h, local, prev, log)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// observeLocal turns the switch's local MACs into knowledge: a MAC that
// appeared is observed on h (learned, or moved there), one that went is
// withdrawn. It returns the MACs now present.
func (s *Server) observeLocal(h *topology.Host, local []hwvtep.LocalMAC, prev map[MACKey]bool, log *zap.Logger) map[MACKey]bool {
	now := time.Now()
	cur := make(map[MACKey]bool, len(local))
	var events []Event
	for _, l := range local {
		key, ok := KeyOf(l.VNI, l.MAC)
		if !ok {
			continue
		}
		cur[key] = true
		if prev[key] {
			continue
		}
		ev, err := s.know.Observe(key, h.Name, l.IP, now)
		if err != nil {
			if s.logOnce.allow("hwvtep-observe/"+h.Name+"/"+l.MAC.String(), now) {
				log.Warn("a MAC the hardware VTEP learned is not taken", zap.Stringer("mac", l.MAC), zap.Uint32("vni", l.VNI), zap.Error(err))
			}
			continue
		}
		events = append(events, ev...)
	}
	for key := range prev {
		if !cur[key] {
			events = append(events, s.know.Withdraw(key, h.Name)...)
		}
	}
	s.changed(events, now)
	return cur
}

// remoteMACs are the MACs the knowledge places on other hosts, in the
// networks h has ports in, with those hosts' VTEPs as locators.
func (s *Server) remoteMACs(h *topology.Host) []hwvtep.RemoteMAC {
	t := s.topo().t
	if cur := t.Host(h.Name); cur != nil {
		h = cur // the same host in a reloaded topology
	}
	nets := map[uint32]bool{}
	for _, n := range t.NetworksOn(h) {
		nets[n.VNI] = true
	}
	eps, _ := s.know.Endpoints()
	var out []hwvtep.RemoteMAC
	for _, e := range eps {
		o := t.Host(e.Host)
		if !nets[e.VNI] || e.Host == h.Name || o == nil {
			continue
		}
		r := hwvtep.RemoteMAC{VNI: e.VNI, MAC: e.MAC, VTEP: o.VTEP}
		for _, ip := range e.IPs {
			if ip.Is4() {
				r.IP = ip
				break
			}
		}
		out = append(out, r)
	}
	return out
}

// isReleased reports whether the first reconciles have been released.
func (s *Server) isReleased() bool {
	select {
	case <-s.released:
		return true
	default:
		return false
	}
}
