// Package hostnet applies the kernel side of a host's topology: the addresses
// of its OVS internal ports and its static routes. It shells out to iproute2
// so it acts in whatever network namespace the process runs in, as the lab
// and anyone running several OVS instances need.
package hostnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// RouteProtocol marks the routes ovs-vxctl installs (rtnetlink's protocol
// field, 0x76 = 'v'): they are its own, and only they are ever removed.
const RouteProtocol = 118

// Change is one kernel change, in the words `--dry-run` prints.
type Change struct {
	Text string
	args []string // ip(8) arguments
}

// Owned names the interfaces that are ovs-vxctl's own internal ports, as
// OVSDB says (an Interface row of type internal on br-int, with ovs-vxctl's
// marks, that ovs-vswitchd attached): the only interfaces whose addresses
// and links Plan ever changes.
type Owned map[string]bool

// Plan computes the changes that make host h's internal port addresses and
// routes match t. Every internal port must be in owned: an interface that
// is not ovs-vxctl's own (say eth0 or lo, named by mistake) is refused,
// never stripped of its addresses.
func Plan(ctx context.Context, t *topology.Topology, h *topology.Host, owned Owned) ([]Change, error) {
	return plan(ctx, t, h, owned, nil)
}

// PlanPending is Plan for a dry run, before OVS has created the internal
// ports in pending: those have no kernel interface yet, and are planned as
// the real run will find them once OVS made them, down and without
// addresses.
func PlanPending(ctx context.Context, t *topology.Topology, h *topology.Host, owned, pending Owned) ([]Change, error) {
	return plan(ctx, t, h, owned, pending)
}

func plan(ctx context.Context, t *topology.Topology, h *topology.Host, owned, pending Owned) ([]Change, error) {
	var out []Change
	for _, p := range t.PortsOn(h) {
		if p.Type != topology.PortInternal {
			continue
		}
		var have []netip.Prefix
		up := false
		switch {
		case owned[p.Name]:
			var err error
			if have, up, err = addresses(ctx, p.Name); err != nil {
				return nil, err
			}
		case !pending[p.Name]:
			return nil, fmt.Errorf("internal port %s: interface %s is not an OVS internal port of ovs-vxctl's on %s: refusing to change its addresses",
				p.Name, p.Name, topology.BridgeInt)
		}
		out = append(out, portChanges(p, have, up)...)
	}
	routes, err := routeChanges(ctx, h)
	if err != nil {
		return nil, err
	}
	return append(out, routes...), nil
}

// portChanges give internal port p its address (only it) and bring it up,
// given the addresses it has and whether it is up.
func portChanges(p *topology.Port, have []netip.Prefix, up bool) []Change {
	var out []Change
	want := p.IP
	for _, a := range have {
		if !want.IsValid() || a != want {
			out = append(out, Change{Text: fmt.Sprintf("- address %s on %s", a, p.Name), args: []string{"addr", "del", a.String(), "dev", p.Name}})
		}
	}
	if want.IsValid() && !slices.Contains(have, want) {
		out = append(out, Change{Text: fmt.Sprintf("+ address %s on %s", want, p.Name), args: []string{"addr", "add", want.String(), "dev", p.Name}})
	}
	if !up {
		out = append(out, Change{Text: fmt.Sprintf("~ link %s up", p.Name), args: []string{"link", "set", p.Name, "up"}})
	}
	return out
}

// routeChanges make the routes ovs-vxctl installed equal h's routes.
func routeChanges(ctx context.Context, h *topology.Host) ([]Change, error) {
	have, err := ownedRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var want []topology.Route
	for _, r := range h.Routes {
		want = append(want, topology.Route{To: r.To.Masked(), Via: r.Via})
	}
	var out []Change
	for _, r := range have {
		if !slices.Contains(want, r) {
			out = append(out, Change{Text: fmt.Sprintf("- route %s via %s", r.To, r.Via), args: routeArgs("del", r)})
		}
	}
	for _, r := range want {
		if slices.Contains(have, r) {
			continue
		}
		if err := refuseForeignRoute(ctx, r.To); err != nil {
			return nil, err
		}
		out = append(out, Change{Text: fmt.Sprintf("+ route %s via %s", r.To, r.Via), args: routeArgs("replace", r)})
	}
	return out, nil
}

// refuseForeignRoute fails when the main table has a route to exactly to,
// of the metric ours get (the kernel's default: 0, 1024 for IPv6), that
// ovs-vxctl did not install: `ip route replace` would overwrite it.
func refuseForeignRoute(ctx context.Context, to netip.Prefix) error {
	fam, metric := "-4", 0
	if to.Addr().Is6() {
		fam, metric = "-6", 1024
	}
	b, err := ip(ctx, "-j", fam, "route", "show", "exact", to.String())
	if err != nil {
		return fmt.Errorf("reading the routes to %s: %w", to, err)
	}
	var routes []struct {
		Dev      string `json:"dev"`
		Gateway  string `json:"gateway"`
		Protocol any    `json:"protocol"`
		Metric   int    `json:"metric"`
	}
	if err := json.Unmarshal(b, &routes); err != nil {
		return fmt.Errorf("reading the routes to %s: %w", to, err)
	}
	for _, r := range routes {
		// ip names the protocols it knows and prints others as numbers.
		if r.Metric == metric && fmt.Sprint(r.Protocol) != strconv.Itoa(RouteProtocol) {
			return fmt.Errorf("route %s: the host already has one (via %q dev %q, protocol %v) that ovs-vxctl did not install: refusing to replace it",
				to, r.Gateway, r.Dev, r.Protocol)
		}
	}
	return nil
}

// PlanDestroy computes the removal of every route ovs-vxctl installed
// (addresses go with the internal ports themselves).
func PlanDestroy(ctx context.Context) ([]Change, error) {
	have, err := ownedRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, r := range have {
		out = append(out, Change{Text: fmt.Sprintf("- route %s via %s", r.To, r.Via), args: routeArgs("del", r)})
	}
	return out, nil
}

// Apply carries the changes out in order and stops at the first failure.
// Links must be up before routes through them, so link changes go first.
func Apply(ctx context.Context, changes []Change) error {
	ordered := slices.Clone(changes)
	slices.SortStableFunc(ordered, func(a, b Change) int {
		return rank(a) - rank(b)
	})
	for _, c := range ordered {
		if _, err := ip(ctx, c.args...); err != nil {
			return fmt.Errorf("applying %q: %w", c.Text, err)
		}
	}
	return nil
}

func rank(c Change) int {
	switch c.args[0] {
	case "addr":
		return 0
	case "link":
		return 1
	}
	return 2
}

func routeArgs(verb string, r topology.Route) []string {
	fam := "-4"
	if r.To.Addr().Is6() {
		fam = "-6"
	}
	return []string{fam, "route", verb, r.To.String(), "via", r.Via.String(), "proto", strconv.Itoa(RouteProtocol)}
}

func ip(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// addresses returns the global addresses of a link and whether it is up.
func addresses(ctx context.Context, dev string) ([]netip.Prefix, bool, error) {
	out, err := ip(ctx, "-j", "addr", "show", "dev", dev)
	if err != nil {
		return nil, false, fmt.Errorf("reading addresses of %s: %w", dev, err)
	}
	var links []struct {
		Flags    []string `json:"flags"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, false, fmt.Errorf("reading addresses of %s: %w", dev, err)
	}
	var have []netip.Prefix
	up := false
	for _, l := range links {
		up = up || slices.Contains(l.Flags, "UP")
		for _, a := range l.AddrInfo {
			if a.Scope != "global" {
				continue
			}
			if addr, err := netip.ParseAddr(a.Local); err == nil {
				have = append(have, netip.PrefixFrom(addr, a.PrefixLen))
			}
		}
	}
	return have, up, nil
}

// ownedRoutes lists the routes marked with RouteProtocol, both families.
func ownedRoutes(ctx context.Context) ([]topology.Route, error) {
	var out []topology.Route
	for _, fam := range []string{"-4", "-6"} {
		b, err := ip(ctx, "-j", fam, "route", "show", "proto", strconv.Itoa(RouteProtocol))
		if err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
		var routes []struct {
			Dst     string `json:"dst"`
			Gateway string `json:"gateway"`
		}
		if err := json.Unmarshal(b, &routes); err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
		for _, r := range routes {
			to, err1 := netip.ParsePrefix(r.Dst)
			if err1 != nil {
				if a, err := netip.ParseAddr(r.Dst); err == nil {
					to, err1 = netip.PrefixFrom(a, a.BitLen()), nil
				}
			}
			via, err2 := netip.ParseAddr(r.Gateway)
			if err1 == nil && err2 == nil {
				out = append(out, topology.Route{To: to.Masked(), Via: via})
			}
		}
	}
	return out, nil
}
