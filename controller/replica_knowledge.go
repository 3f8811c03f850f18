package controller

import (
	"net/netip"
	"time"
)

// Merge takes in an endpoint another controller replica learned (read from
// the directory): key is on host and answers for ips. A new MAC is learned
// (unless a bound is reached: *FullError); a learned MAC elsewhere moves to
// host without flap damping (the replica that saw it move damped it
// already); ips are added to its learned IPs. A declared MAC is left alone:
// the topology says where it is. What is already known changes nothing and
// returns no event, so replicas hearing their own news back stay quiet.
func (k *Knowledge) Merge(key MACKey, host string, ips []netip.Addr, now time.Time) ([]Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.macs[key]
	if m != nil && m.declared {
		return nil, nil
	}
	var ev []Event
	switch {
	case m == nil:
		if err := k.room(key.VNI); err != nil {
			return nil, err
		}
		m = &knownMAC{host: host}
		k.learn(key, m)
		ev = append(ev, Event{Kind: EventLearned, Key: key, Host: host})
	case m.host != host:
		ev = append(ev, Event{Kind: EventMoved, Key: key, Host: host, OldHost: m.host})
		m.host = host
		m.hasPackets = false // its counters are on the old host
	}
	if len(ev) > 0 {
		// A replica saw it live there: adoption must not move it back,
		// and its idle clock starts now.
		m.observed, m.lastSeen = true, now
	}
	for _, ip := range ips {
		ev = append(ev, k.addIP(key, m, ip, true)...)
	}
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev, nil
}
