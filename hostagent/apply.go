package hostagent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// process handles what is pending: a reload first when asked, then one
// apply, unless the only reason was a reload that changed nothing or was
// refused. It reports whether it applied, and the apply's error.
func (d *Daemon) process(ctx context.Context) (applied bool, err error) {
	p := d.take()
	if len(p.reloads) > 0 {
		switch changed, err := d.reload(); {
		case err != nil:
			d.m.reloads.WithLabelValues(reloadRefused).Inc()
			d.log.Error("topology file refused, nothing changed: still serving the last good topology",
				zap.String("file", d.o.File), zap.Strings("problems", problems(err)), zap.Error(err))
		case changed:
			d.m.reloads.WithLabelValues(reloadApplied).Inc()
			d.log.Info("topology file reloaded", zap.String("file", d.o.File), zap.Strings("because", p.reloads))
			p.reasons = append(p.reasons, "topology file reloaded")
		default:
			d.m.reloads.WithLabelValues(reloadUnchanged).Inc()
			d.log.Debug("topology file unchanged", zap.String("file", d.o.File))
		}
	}
	if len(p.reasons) == 0 {
		return false, nil
	}
	return true, d.apply(ctx, p.reasons)
}

// reload reads the file again. A valid file whose host is still managed
// replaces the topology (changed reports whether its bytes differ); any
// problem leaves everything as it was.
func (d *Daemon) reload() (changed bool, err error) {
	b, err := os.ReadFile(d.o.File)
	if err != nil {
		return false, fmt.Errorf("reading the topology file: %w", err)
	}
	if sha256.Sum256(b) == d.fileHash {
		return false, nil
	}
	t, err := d.o.Parse(b)
	if err != nil {
		return false, fmt.Errorf("invalid topology %s: %w", d.o.File, err)
	}
	h := t.Host(d.o.Host)
	switch {
	case h == nil:
		return false, fmt.Errorf("host %s is not in the new topology %s", d.o.Host, t.Name)
	case !h.Managed:
		return false, fmt.Errorf("host %s is not managed in the new topology (managed: false)", d.o.Host)
	}
	d.t, d.h, d.fileHash = t, h, sha256.Sum256(b)
	d.interest.Store(ovsdb.InterestOf(t, h))
	return true, nil
}

// apply runs one apply for reasons and logs what it did. It is not
// cancelled by ctx (only bounded by ApplyTimeout): stopping in the middle
// would leave OVSDB committed and the flows not installed.
func (d *Daemon) apply(ctx context.Context, reasons []string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.ApplyTimeout)
	defer cancel()
	start := time.Now()
	t := d.withAttachedMACs(actx)
	rep, err := d.o.Apply(actx, t, t.Host(d.h.Name))
	took := time.Since(start)
	d.m.applySeconds.Observe(took.Seconds())
	d.setReady(err)
	if err != nil {
		d.synced = false
		d.m.applies.WithLabelValues(applyFailed).Inc()
		d.log.Error(MsgFailed, zap.Strings("because", capReasons(reasons)), zap.Duration("took", took), zap.Error(err))
		return err
	}
	d.m.lastSuccess.SetToCurrentTime()
	d.logWarnings(rep.Warnings)
	synced := d.synced
	d.synced = true
	if !rep.Changed() {
		d.m.applies.WithLabelValues(applyUnchanged).Inc()
		// Said once after starting or failing, then only when debugging.
		level := zap.DebugLevel
		if !synced {
			level = zap.InfoLevel
		}
		d.log.Log(level, MsgUnchanged, zap.Strings("because", capReasons(reasons)), zap.Duration("took", took))
		return nil
	}
	d.m.applies.WithLabelValues(applyChanged).Inc()
	d.log.Info(MsgApplied, zap.Strings("because", capReasons(reasons)), zap.Strings("ovsdb", rep.OVSDB),
		zap.Strings("flows", flowSummary(rep.Flows)), zap.Strings("kernel", rep.Kernel), zap.Duration("took", took))
	return nil
}

// logWarnings logs the warnings the previous apply did not give, and says
// when the previous ones are gone: each is logged once, not at every apply.
func (d *Daemon) logWarnings(ws []string) {
	for _, w := range ws {
		if !slices.Contains(d.warnings, w) {
			d.log.Warn(w)
		}
	}
	if len(ws) == 0 && len(d.warnings) > 0 {
		d.log.Info("earlier warnings resolved", zap.Int("warnings", len(d.warnings)))
	}
	d.warnings = slices.Clone(ws)
}

// maxReasons bounds the reasons an apply log line lists.
const maxReasons = 8

func capReasons(rs []string) []string {
	if len(rs) <= maxReasons {
		return rs
	}
	return append(slices.Clone(rs[:maxReasons]), fmt.Sprintf("and %d more", len(rs)-maxReasons))
}

// flowSummary is one "bridge +adds ~modifies -deletes" per changed bridge.
func flowSummary(fs []agent.BridgeFlows) []string {
	var out []string
	for _, f := range fs {
		if !f.Diff.Empty() {
			out = append(out, fmt.Sprintf("%s +%d ~%d -%d", f.Bridge, len(f.Diff.Add), len(f.Diff.Modify), len(f.Diff.Delete)))
		}
	}
	return out
}

// withAttachedMACs is the topology with the attached-mac of each bound
// interface as the MAC of its port, where the file gives none. A MAC that
// is not a usable unicast MAC, or that another port of the network
// declares, is left out (and logged once, as a warning of the apply would
// be). Without Bindings, or when they cannot be read, it is the topology.
func (d *Daemon) withAttachedMACs(ctx context.Context) *topology.Topology {
	if d.o.Bindings == nil || !hasIfaceIDs(d.t, d.h) {
		return d.t
	}
	bs, err := d.o.Bindings(ctx, d.t, d.h)
	if err != nil {
		d.log.Debug("reading the bound interfaces' MACs", zap.Error(err))
		return d.t
	}
	macs := map[*topology.Port]net.HardwareAddr{}
	for _, p := range d.t.PortsOn(d.h) {
		if p.IfaceID == "" || p.MAC != nil {
			continue
		}
		i := slices.IndexFunc(bs, func(b ovsdb.Binding) bool { return b.Port == p.Name && b.AttachedMAC != "" })
		if i < 0 {
			continue
		}
		if mac, err := usableMAC(bs[i].AttachedMAC, p.Network); err != nil {
			d.log.Debug("attached-mac not used", zap.String("port", p.Name), zap.Error(err))
		} else {
			macs[p] = mac
		}
	}
	dropSharedMACs(macs, d.log)
	if len(macs) == 0 {
		return d.t
	}
	return withMACs(d.t, macs)
}

// dropSharedMACs leaves out every attached-mac that two ports of one
// network got (a cloned VM, or a forged attached-mac): the MAC cannot say
// which port is behind it, and giving it to either would send the other's
// traffic there.
func dropSharedMACs(macs map[*topology.Port]net.HardwareAddr, log *zap.Logger) {
	type key struct {
		n   *topology.Network
		mac string
	}
	count := map[key]int{}
	for p, mac := range macs {
		count[key{p.Network, mac.String()}]++
	}
	for p, mac := range macs {
		if count[key{p.Network, mac.String()}] > 1 {
			log.Debug("attached-mac not used: another port of the network has it too",
				zap.String("port", p.Name), zap.String("network", p.Network.Name), zap.String("mac", mac.String()))
			delete(macs, p)
		}
	}
}

func hasIfaceIDs(t *topology.Topology, h *topology.Host) bool {
	return slices.ContainsFunc(t.PortsOn(h), func(p *topology.Port) bool { return p.IfaceID != "" })
}

// usableMAC parses s as a unicast MAC that no port of n declares.
func usableMAC(s string, n *topology.Network) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	switch {
	case err != nil || len(mac) != 6:
		return nil, fmt.Errorf("%q is not a MAC address", s)
	case mac[0]&1 != 0:
		return nil, fmt.Errorf("%s is a multicast address", mac)
	}
	for _, p := range n.Ports {
		if p.MAC.String() == mac.String() {
			return nil, errors.New(mac.String() + " is declared by port " + p.Name + " of network " + n.Name)
		}
	}
	return mac, nil
}

// withMACs copies t's networks and ports, giving the ports in macs those
// MACs; hosts are shared (they do not change).
func withMACs(t *topology.Topology, macs map[*topology.Port]net.HardwareAddr) *topology.Topology {
	c := *t
	c.Networks = make([]*topology.Network, len(t.Networks))
	for i, n := range t.Networks {
		nc := *n
		nc.Ports = make([]*topology.Port, len(n.Ports))
		for j, p := range n.Ports {
			pc := *p
			pc.Network = &nc
			if mac, ok := macs[p]; ok {
				pc.MAC = mac
			}
			nc.Ports[j] = &pc
		}
		c.Networks[i] = &nc
	}
	return &c
}

// problems lists a topology error's problems one by one (structured logs
// then show each), or the error's text.
func problems(err error) []string {
	var te *topology.Errors
	if !errors.As(err, &te) {
		return []string{err.Error()}
	}
	out := make([]string, len(te.List))
	for i, e := range te.List {
		out[i] = e.Error()
	}
	return out
}
