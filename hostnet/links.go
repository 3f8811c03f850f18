package hostnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Link is one kernel network interface as apply's ownership checks see it.
type Link struct {
	Name string
	// Kind is the link's driver as `ip -d link` names it (veth, tun,
	// bridge, bond, openvswitch...); "" for a physical NIC or loopback.
	Kind string
	// Loopback is set for lo.
	Loopback bool
	// Master is the bridge, bond or VRF the link is enslaved to; "" none.
	Master string
	// MTU is the link's MTU.
	MTU int
	// Addrs are its addresses, but the IPv6 link-local ones the kernel
	// gives every link that is up: those say nothing about its use.
	Addrs []netip.Prefix
}

// Describe says what the link is, for error messages: "eth0 (veth, with
// 203.0.113.5/24)".
func (l Link) Describe() string {
	var parts []string
	switch {
	case l.Loopback:
		parts = append(parts, "loopback")
	case l.Kind != "":
		parts = append(parts, l.Kind)
	default:
		parts = append(parts, "a physical or unknown device")
	}
	if len(l.Addrs) > 0 {
		var a []string
		for _, p := range l.Addrs {
			a = append(a, p.String())
		}
		parts = append(parts, "with "+strings.Join(a, ", "))
	}
	if l.Master != "" {
		parts = append(parts, "enslaved to "+l.Master)
	}
	return l.Name + " (" + strings.Join(parts, ", ") + ")"
}

// Links lists the kernel interfaces of the network namespace the process
// runs in, by name.
func Links(ctx context.Context) (map[string]Link, error) {
	out, err := ip(ctx, "-d", "-j", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	links, err := parseLinks(out)
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	return links, nil
}

// parseLinks reads the output of `ip -d -j addr show`.
func parseLinks(out []byte) (map[string]Link, error) {
	var raw []struct {
		Name     string `json:"ifname"`
		LinkType string `json:"link_type"`
		Master   string `json:"master"`
		MTU      int    `json:"mtu"`
		LinkInfo struct {
			Kind string `json:"info_kind"`
		} `json:"linkinfo"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("reading ip's JSON: %w", err)
	}
	links := map[string]Link{}
	for _, r := range raw {
		l := Link{Name: r.Name, Kind: r.LinkInfo.Kind, Loopback: r.LinkType == "loopback", Master: r.Master, MTU: r.MTU}
		for _, a := range r.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err != nil || (addr.Is6() && addr.IsLinkLocalUnicast()) {
				continue
			}
			l.Addrs = append(l.Addrs, netip.PrefixFrom(addr, a.PrefixLen))
		}
		links[r.Name] = l
	}
	return links, nil
}

// HoldsAddr returns the link that has addr as one of its addresses.
func HoldsAddr(links map[string]Link, addr netip.Addr) (Link, bool) {
	for _, name := range sortedNames(links) {
		l := links[name]
		if slices.ContainsFunc(l.Addrs, func(p netip.Prefix) bool { return p.Addr() == addr }) {
			return l, true
		}
	}
	return Link{}, false
}

func sortedNames(links map[string]Link) []string {
	names := make([]string, 0, len(links))
	for n := range links {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// RouteDevice returns the interface the kernel routes dst through; ok is
// false when it has no route to dst.
func RouteDevice(ctx context.Context, dst netip.Addr) (dev string, ok bool) {
	out, err := ip(ctx, "-j", "route", "get", dst.String())
	if err != nil {
		return "", false // unreachable: no device to protect
	}
	var routes []struct {
		Dev string `json:"dev"`
	}
	if json.Unmarshal(out, &routes) != nil || len(routes) == 0 || routes[0].Dev == "" {
		return "", false
	}
	return routes[0].Dev, true
}
