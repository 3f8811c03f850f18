package ovsdb

import (
	"fmt"
	"path/filepath"
	"strings"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// SSLFiles are the files ovs-vswitchd uses for ssl: connections to the
// controller, as `ovs-vsctl set-ssl PRIVATE-KEY CERTIFICATE CA-CERT` sets
// them: paths on the switch's host, opened by ovs-vswitchd (not by this
// process), hence absolute. Their existence is not checked here: the
// database may belong to another machine.
type SSLFiles struct {
	// PrivateKey is the switch's private key (PEM): --private-key.
	PrivateKey string
	// Certificate is the switch's certificate (PEM), signed by a CA the
	// controller trusts: --certificate.
	Certificate string
	// CACert is the CA certificate (PEM) the controller's certificate
	// must be signed by: --ca-cert.
	CACert string
}

// PlanOptions are the optional inputs of PlanWith. The zero value is what
// Plan uses.
type PlanOptions struct {
	// SSL is required when the host is in controller mode and the
	// topology's controller target starts with "ssl:": the plan then
	// creates (or updates) an SSL row of ours and points Open_vSwitch.ssl
	// at it. In any other case it is not used (the plan says so in a note)
	// and an SSL row of ours, if any, is removed.
	SSL *SSLFiles
	// MTU is each network's effective MTU by VNI (topology.EffectiveMTU
	// on this host's underlay): the mtu_request of its internal ports,
	// recorded on br-int for show. A network without one (0 or absent:
	// the underlay's MTU is unknown) gets no mtu_request.
	MTU map[uint32]int
}

// wantSSL is the desired SSL row.
type wantSSL struct {
	privateKey, certificate, caCert string
	externalIDs                     map[string]string
}

// summary is the detail shown on "+ ssl" and "- ssl" lines.
func (w *wantSSL) summary() string {
	return fmt.Sprintf("(private_key=%s certificate=%s ca_cert=%s)", w.privateKey, w.certificate, w.caCert)
}

// sslNeeded reports whether host h connects to any of its controllers over
// TLS (OVS has one SSL row for all of them).
func sslNeeded(t *topology.Topology, h *topology.Host) bool {
	return h.Mode == topology.ModeController && sslTarget(t) != ""
}

// sslTarget is the first ssl: controller target of t, or "".
func sslTarget(t *topology.Topology) string {
	for _, c := range t.ControllerTargets() {
		if strings.HasPrefix(c, "ssl:") {
			return c
		}
	}
	return ""
}

// desiredSSL computes the SSL row host h needs: nil when it needs none.
// An ssl: target without all three files is an error naming the missing
// options.
func desiredSSL(t *topology.Topology, h *topology.Host, files *SSLFiles) (*wantSSL, error) {
	if !sslNeeded(t, h) {
		return nil, nil
	}
	if files == nil {
		files = &SSLFiles{}
	}
	var missing, relative []string
	for _, f := range []struct{ path, option string }{
		{files.PrivateKey, "--private-key"},
		{files.Certificate, "--certificate"},
		{files.CACert, "--ca-cert"},
	} {
		switch {
		case f.path == "":
			missing = append(missing, f.option)
		case !filepath.IsAbs(f.path):
			relative = append(relative, fmt.Sprintf("%s %s", f.option, f.path))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("host %s: controller target %s needs TLS files: missing %s",
			h.Name, sslTarget(t), strings.Join(missing, ", "))
	}
	if len(relative) > 0 {
		return nil, fmt.Errorf("host %s: TLS file paths must be absolute (ovs-vswitchd opens them from its own working directory): %s",
			h.Name, strings.Join(relative, ", "))
	}
	m := marks{owner: t.Name, host: h.Name}
	return &wantSSL{
		privateKey:  files.PrivateKey,
		certificate: files.Certificate,
		caCert:      files.CACert,
		externalIDs: m.ids(),
	}, nil
}

// rootSSL returns the SSL row Open_vSwitch.ssl points at: its UUID ("" when
// none) and the row (nil when none, or when the cache does not hold it).
func (s *snapshot) rootSSL() (string, *vswitch.SSL) {
	if s.root.SSL == nil || *s.root.SSL == "" {
		return "", nil
	}
	return *s.root.SSL, s.ssl[*s.root.SSL]
}

// sslConflict reports an Open_vSwitch.ssl that points at a row we do not
// own when we need one of our own: it is the switch's only SSL
// configuration, and replacing someone else's could cut their connections.
func (p *planner) sslConflict(w *wantSSL) error {
	if w == nil {
		return nil
	}
	u, cur := p.snap.rootSSL()
	switch {
	case u == "":
		return nil
	case cur == nil:
		return fmt.Errorf("Open_vSwitch.ssl points at SSL row %s, which could not be read: ovs-vxctl will not replace it", u)
	case !p.m.owns(cur.ExternalIDs):
		return fmt.Errorf("Open_vSwitch.ssl already points at an SSL row (private_key=%s certificate=%s ca_cert=%s) and %s: "+
			"ovs-vxctl will not replace the switch's SSL configuration; remove it (ovs-vsctl del-ssl) if nothing else needs it",
			cur.PrivateKey, cur.Certificate, cur.CaCert, ownerOf(cur.ExternalIDs))
	}
	return nil
}

// reconcileSSL makes the SSL configuration match w: our row created and
// referenced, updated in place, or (w nil) removed. An SSL row that is not
// ours is never touched: sslConflict has already refused to plan when we
// needed one and found it.
func (p *planner) reconcileSSL(w *wantSSL) {
	u, cur := p.snap.rootSSL()
	ours := cur != nil && p.m.owns(cur.ExternalIDs)
	switch {
	case w == nil:
		if ours {
			p.removeSSL(u, cur)
		}
	case u == "":
		p.b.guardRootSSL(p.snap.root.UUID, "")
		p.b.setRootSSL(p.snap.root.UUID, p.b.createSSL(w))
		p.change("+ ssl %s", w.summary())
	default: // ours: sslConflict rejected the rest
		before := len(p.b.ops)
		row := &vswitch.SSL{UUID: u}
		var fields []any
		for _, c := range []struct {
			column   string
			cur      string
			want     string
			rowField *string
		}{
			{"private_key", cur.PrivateKey, w.privateKey, &row.PrivateKey},
			{"certificate", cur.Certificate, w.certificate, &row.Certificate},
			{"ca_cert", cur.CaCert, w.caCert, &row.CaCert},
		} {
			if c.cur != c.want {
				p.change("~ ssl %s %s -> %s", c.column, show(c.cur), c.want)
				*c.rowField = c.want
				fields = append(fields, c.rowField)
			}
		}
		p.b.update(row, fields...)
		p.reconcileMap("ssl", "external_ids", row, &row.ExternalIDs, cur.ExternalIDs, w.externalIDs, isOurKey, nil)
		if len(p.b.ops) > before {
			// Updating a row someone has meanwhile unreferenced would
			// silently configure nothing.
			p.b.guardRootSSL(p.snap.root.UUID, u)
		}
	}
}

// removeSSL unreferences our SSL row u; OVSDB then collects it (the SSL
// table is not a root table).
func (p *planner) removeSSL(u string, cur *vswitch.SSL) {
	p.b.clearRootSSL(p.snap.root.UUID, u)
	p.change("- ssl (private_key=%s certificate=%s ca_cert=%s)", cur.PrivateKey, cur.Certificate, cur.CaCert)
}

// guardRootSSL makes the transaction fail unless Open_vSwitch.ssl still
// points at cur ("" for nothing), as it did when the plan was made.
func (b *builder) guardRootSSL(root, cur string) {
	timeout := 0
	set := libovsdb.OvsSet{GoSet: []any{}}
	if cur != "" {
		set.GoSet = append(set.GoSet, libovsdb.UUID{GoUUID: cur})
	}
	b.guards = append(b.guards, libovsdb.Operation{
		Op:      libovsdb.OperationWait,
		Table:   vswitch.OpenvSwitchTable,
		Where:   []libovsdb.Condition{libovsdb.NewCondition("_uuid", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: root})},
		Columns: []string{"ssl"},
		Until:   string(libovsdb.WaitConditionEqual),
		Rows:    []libovsdb.Row{{"ssl": set}},
		Timeout: &timeout,
	})
	b.guardWhy = append(b.guardWhy, "Open_vSwitch.ssl was changed by someone else after the plan was made")
}

// createSSL inserts the SSL row w and returns its named UUID.
func (b *builder) createSSL(w *wantSSL) string {
	ref := b.newName()
	b.add(b.api.Create(&vswitch.SSL{
		UUID:        ref,
		PrivateKey:  w.privateKey,
		Certificate: w.certificate,
		CaCert:      w.caCert,
		ExternalIDs: w.externalIDs,
	}))
	return ref
}

// setRootSSL points Open_vSwitch.ssl at ssl (a UUID or named UUID).
func (b *builder) setRootSSL(root, ssl string) {
	r := &vswitch.OpenvSwitch{UUID: root, SSL: &ssl}
	b.update(r, &r.SSL)
}

// clearRootSSL empties Open_vSwitch.ssl if it still points at ssl. A raw
// mutation: libovsdb's typed Mutate does not accept optional columns.
func (b *builder) clearRootSSL(root, ssl string) {
	b.add([]libovsdb.Operation{{
		Op:    libovsdb.OperationMutate,
		Table: vswitch.OpenvSwitchTable,
		Where: []libovsdb.Condition{libovsdb.NewCondition("_uuid", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: root})},
		Mutations: []libovsdb.Mutation{{
			Column:  "ssl",
			Mutator: libovsdb.MutateOperationDelete,
			Value:   libovsdb.OvsSet{GoSet: []any{libovsdb.UUID{GoUUID: ssl}}},
		}},
	}}, nil)
}
