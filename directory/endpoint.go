package directory

import (
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
)

// Kind says where an endpoint comes from.
type Kind string

const (
	// KindDeclared is an endpoint the topology file declares.
	KindDeclared Kind = "declared"
	// KindLearned is an endpoint a replica learned from traffic.
	KindLearned Kind = "learned"
)

// Key identifies an endpoint: the schema's index (vni, mac).
type Key struct {
	VNI uint32
	MAC string // canonical, lowercase, as net.HardwareAddr.String prints it
}

// Endpoint is one row of the Endpoint table: where MAC lives in VNI.
type Endpoint struct {
	Key
	Host    string
	IPs     []string // sorted
	Kind    Kind
	Writer  string    // the replica that wrote it
	Updated time.Time // when it was written (millisecond precision)
}

// equal reports whether a and b hold the same values.
func (a Endpoint) equal(b Endpoint) bool {
	return a.Key == b.Key && a.Host == b.Host && slices.Equal(a.IPs, b.IPs) && a.Kind == b.Kind &&
		a.Writer == b.Writer && a.Updated.Equal(b.Updated)
}

// fromModel converts a monitored row.
func fromModel(m *model.Endpoint) Endpoint {
	ips := slices.Clone(m.IPs)
	slices.Sort(ips)
	return Endpoint{
		Key:  Key{VNI: uint32(m.Vni), MAC: m.MAC},
		Host: m.Host, IPs: ips, Kind: Kind(m.Kind), Writer: m.Writer,
		Updated: time.UnixMilli(int64(m.Updated)),
	}
}

// row is e's columns other than the index, as an insert or update sets them.
func (e Endpoint) row() (ovsdb.Row, error) {
	ips := make([]any, len(e.IPs))
	for i, ip := range e.IPs {
		ips[i] = ip
	}
	set, err := ovsdb.NewOvsSet(ips)
	if err != nil {
		return nil, err
	}
	return ovsdb.Row{
		"host": e.Host, "ips": set, "kind": string(e.Kind), "writer": e.Writer, "updated": int(e.Updated.UnixMilli()),
	}, nil
}

// where selects e's row by the index.
func (k Key) where() []ovsdb.Condition {
	return []ovsdb.Condition{
		{Column: "vni", Function: ovsdb.ConditionEqual, Value: int(k.VNI)},
		{Column: "mac", Function: ovsdb.ConditionEqual, Value: k.MAC},
	}
}
