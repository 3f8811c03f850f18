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

// Plan computes the changes that make host h's internal port addresses and
// routes match t. Internal ports must already exist unless dryRun is set.
func Plan(ctx context.Context, t *topology.Topology, h *topology.Host) ([]Change, error) {
	var out []Change
	for _, p := range t.PortsOn(h) {
		if p.Type != topology.PortInternal {
			continue
		}
		have, up, err := addresses(ctx, p.Name)
		if err != nil {
			return nil, err
		}
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
	}
	have, err := ownedRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var want []topology.Route
	for _, r := range h.Routes {
		want = append(want, topology.Route{To: r.To.Masked(), Via: r.Via})
	}
	for _, r := range have {
		if !slices.Contains(want, r) {
			out = append(out, Change{Text: fmt.Sprintf("- route %s via %s", r.To, r.Via), args: routeArgs("del", r)})
		}
	}
	for _, r := range want {
		if !slices.Contains(have, r) {
			out = append(out, Change{Text: fmt.Sprintf("+ route %s via %s", r.To, r.Via), args: routeArgs("replace", r)})
		}
	}
	return out, nil
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
