package controller

import (
	"net/netip"
	"slices"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Redeclare replaces the declared endpoints with those of a reloaded
// topology (flows.DeclaredEndpoints). A MAC no longer declared is forgotten
// (a VM still there is learned again from its next frame); a newly declared
// one is known at once, and a learned one that the file now declares
// becomes declared (no longer counted against the bounds, never moving
// again); a declared one takes its new host and IPs. A declared IP is taken
// from any MAC that had learned it. Learned MACs for which keep is false
// (their host left their network, or the topology) are forgotten.
func (k *Knowledge) Redeclare(declared []flows.Endpoint, keep func(host string, vni uint32) bool) []Event {
	want := mergeDeclared(declared)
	k.mu.Lock()
	defer k.mu.Unlock()
	ev := k.undeclare(want, keep)
	ev = append(ev, k.declare(want)...)
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev
}

// mergeDeclared indexes declared by key as NewKnowledge takes them: the
// first host given wins, the IPs add up.
func mergeDeclared(declared []flows.Endpoint) map[MACKey]flows.Endpoint {
	want := map[MACKey]flows.Endpoint{}
	for _, e := range declared {
		key, ok := KeyOf(e.VNI, e.MAC)
		if !ok {
			continue
		}
		w, seen := want[key]
		if !seen {
			w = flows.Endpoint{VNI: e.VNI, MAC: e.MAC, Host: e.Host}
		}
		for _, ip := range e.IPs {
			if !slices.Contains(w.IPs, ip) {
				w.IPs = append(w.IPs, ip)
			}
		}
		want[key] = w
	}
	return want
}

// undeclare forgets the declared MACs want lacks and the learned MACs keep
// refuses.
func (k *Knowledge) undeclare(want map[MACKey]flows.Endpoint, keep func(host string, vni uint32) bool) []Event {
	var ev []Event
	for key, m := range k.macs {
		switch {
		case m.declared:
			if _, ok := want[key]; ok {
				continue
			}
			k.dropDeclaredIPs(key, m)
			delete(k.macs, key)
			ev = append(ev, Event{Kind: EventUndeclared, Key: key, Host: m.host})
		case !keep(m.host, key.VNI):
			k.forget(key, m)
			ev = append(ev, Event{Kind: EventForgotten, Key: key, Host: m.host})
		}
	}
	return ev
}

// declare makes every endpoint of want known as declared there.
func (k *Knowledge) declare(want map[MACKey]flows.Endpoint) []Event {
	changed := map[MACKey]bool{}
	for key, e := range want {
		m := k.macs[key]
		switch {
		case m == nil:
			m = &knownMAC{host: e.Host, declared: true}
			k.macs[key] = m
			changed[key] = true
		case !m.declared:
			m.declared = true
			k.learned--
			if k.perVNI[key.VNI]--; k.perVNI[key.VNI] <= 0 {
				delete(k.perVNI, key.VNI)
			}
			changed[key] = true
		}
		if m.host != e.Host {
			// Its counters and its confirmation were of the old host.
			m.host, m.hasPackets, m.observed = e.Host, false, false
			changed[key] = true
		}
		if !sameAddrs(m.declaredIPs, e.IPs) {
			k.dropDeclaredIPs(key, m)
			m.declaredIPs = slices.Clone(e.IPs)
			changed[key] = true
		}
	}
	// Only now that every old declaration is gone: an IP may pass from
	// one declared MAC to another.
	for key, e := range want {
		for _, ip := range e.IPs {
			ik := ipKey{key.VNI, ip}
			k.declaredIP[ik] = key
			owner, ok := k.learnedIP[ik]
			if !ok {
				continue
			}
			delete(k.learnedIP, ik)
			if o := k.macs[owner]; o != nil {
				o.learnedIPs = slices.DeleteFunc(o.learnedIPs, func(a netip.Addr) bool { return a == ip })
			}
			if owner != key {
				// Not an event of its own: commit lists it with the
				// declaration that took its address.
				k.stolen = append(k.stolen, owner)
			}
		}
	}
	var ev []Event
	for key := range changed {
		if m := k.macs[key]; m != nil {
			ev = append(ev, Event{Kind: EventDeclared, Key: key, Host: m.host})
		}
	}
	return ev
}

// dropDeclaredIPs removes m's declared IPs from the index.
func (k *Knowledge) dropDeclaredIPs(key MACKey, m *knownMAC) {
	for _, ip := range m.declaredIPs {
		if ik := (ipKey{key.VNI, ip}); k.declaredIP[ik] == key {
			delete(k.declaredIP, ik)
		}
	}
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
