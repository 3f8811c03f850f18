package hwvtep

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// A switch's database is outside input: whoever runs the switch (or a bug
// in it) decides what Ucast_Macs_Local holds. What the controller takes
// from it is checked and bounded here, so that a switch reporting
// malformed rows or a flood of MACs cannot fill the controller's
// knowledge nor the OVS hosts' tables.

// DefaultMaxLocalMACs bounds the local MACs taken from one switch per read:
// the controller's default bound on learned MACs of one network.
const DefaultMaxLocalMACs = 8192

// MinSchemaVersion is the oldest hardware_vtep schema served by a switch
// that ovs-vxctl drives: the one its model was generated from (OVS 2.x's
// vtep.ovsschema, with Logical_Switch replication_mode and other_config).
const MinSchemaVersion = "1.7.0"

// Reasons a local MAC row is refused, the "reason" label of the metric.
const (
	RefusedMAC   = "malformed_mac" // not a unicast Ethernet address
	RefusedIP    = "malformed_ip"  // the MAC is taken, its ipaddr is not
	RefusedLimit = "over_limit"    // beyond Limits.MaxLocalMACs
)

// Option configures Connect.
type Option func(*Client)

// WithMaxLocalMACs bounds the local MACs Sync returns (0: the default).
func WithMaxLocalMACs(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxLocal = n
		}
	}
}

// lean makes a client for apply, destroy and diff (Client.lean).
func lean() Option { return func(c *Client) { c.lean = true } }

// WithMetrics makes the client report what it refused in m.
func WithMetrics(m *Metrics) Option { return func(c *Client) { c.metrics = m } }

// Metrics are the gauges of what clients refused of their switches'
// databases; one Metrics serves every client of a process.
type Metrics struct {
	refused *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{refused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ovs_vxctl", Subsystem: "hwvtep",
		Name: "local_macs_refused", Help: "Ucast_Macs_Local rows of our logical switches not taken at the last read, by switch database and reason."},
		[]string{"endpoint", "reason"})}
	reg.MustRegister(m.refused)
	return m
}

// refusals counts the local MAC rows of one read that were not taken, and
// keeps a few examples for the log.
type refusals struct {
	mac, ip, limit int
	examples       []string
}

func (r *refusals) add(reason string, example string) {
	switch reason {
	case RefusedMAC:
		r.mac++
	case RefusedIP:
		r.ip++
	case RefusedLimit:
		r.limit++
	}
	if len(r.examples) < 3 && example != "" {
		r.examples = append(r.examples, example)
	}
}

func (r refusals) same(o refusals) bool { return r.mac == o.mac && r.ip == o.ip && r.limit == o.limit }

// report logs the refusals of a read when they differ from the previous
// read's (once per change, not per poll) and sets the gauges.
func (c *Client) report(r refusals) {
	if c.metrics != nil {
		for reason, n := range map[string]int{RefusedMAC: r.mac, RefusedIP: r.ip, RefusedLimit: r.limit} {
			c.metrics.refused.WithLabelValues(c.endpoint, reason).Set(float64(n))
		}
	}
	if r.same(c.refused) {
		return
	}
	c.refused = r
	if r.mac+r.ip+r.limit == 0 {
		c.log.Info("hardware VTEP local MACs all taken again", zap.String("endpoint", c.endpoint))
		return
	}
	c.log.Warn("hardware VTEP reports local MACs that are not taken",
		zap.String("endpoint", c.endpoint), zap.Int(RefusedMAC, r.mac), zap.Int(RefusedIP, r.ip),
		zap.Int(RefusedLimit, r.limit), zap.Int("max_local_macs", c.maxLocal), zap.Strings("examples", r.examples))
}

// parseLocalMAC checks a Ucast_Macs_Local row's MAC and ipaddr: the MAC
// must be a unicast, non-zero Ethernet address; the IP, when there is one,
// a unicast address (not unspecified, loopback nor multicast), else the
// MAC is taken without it. reason says what was refused ("" nothing).
func parseLocalMAC(macText, ipText string) (mac net.HardwareAddr, ip netip.Addr, reason string) {
	mac, err := net.ParseMAC(macText)
	if err != nil || len(mac) != 6 || mac[0]&1 != 0 || isZero(mac) {
		return nil, netip.Addr{}, RefusedMAC
	}
	if ipText == "" {
		return mac, netip.Addr{}, ""
	}
	ip, err = netip.ParseAddr(ipText)
	if err != nil || ip.Zone() != "" || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || (ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return mac, netip.Addr{}, RefusedIP
	}
	return mac, ip.Unmap(), ""
}

func isZero(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return true
}

// quote shows a string read from the switch in a log or error: quoted
// (escaping control characters) and cut to a sane length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// checkVersion refuses a schema older than MinSchemaVersion.
func checkVersion(endpoint, version string) error {
	if compareVersions(version, MinSchemaVersion) < 0 {
		return fmt.Errorf("the hardware VTEP's OVSDB at %s serves hardware_vtep schema version %s; ovs-vxctl needs %s or later (OVS 2.x's vtep.ovsschema)",
			endpoint, quote(version), MinSchemaVersion)
	}
	return nil
}

// compareVersions compares "X.Y.Z" versions numerically; one that does not
// parse is older than any that does.
func compareVersions(a, b string) int {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	f := strings.Split(v, ".")
	if len(f) != 3 {
		return out, false
	}
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// KeepLocal tells a new client which local MACs a previous connection to
// the same switch took: over the bound they keep their place (admit)
// rather than yield to MACs that sort first.
func (c *Client) KeepLocal(macs []LocalMAC) {
	c.admitted = make(map[macKey]bool, len(macs))
	for _, l := range macs {
		if len(l.MAC) == 6 {
			c.admitted[keyOfLocal(l)] = true
		}
	}
}
