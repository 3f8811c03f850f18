// Package directory is the client of ovs-vxctl's directory: a clustered
// ovsdb-server (Raft) serving the OVS_VXCTL_Directory schema, which holds
// what controller replicas share: the endpoints (VNI, MAC -> host, IPs),
// which replica masters each switch, and the replicas themselves.
package directory

import (
	_ "embed" // the schema file
)

// schemaJSON is the OVSDB schema of the directory; model/ is generated
// from the same file.
//
//go:embed directory.ovsschema
var schemaJSON []byte

// DatabaseName is the name of the directory's database in its schema.
const DatabaseName = "OVS_VXCTL_Directory"

// Schema returns the directory's OVSDB schema (JSON), as
// `ovsdb-tool create-cluster DB SCHEMA ADDRESS` takes it.
func Schema() []byte {
	return append([]byte(nil), schemaJSON...)
}
