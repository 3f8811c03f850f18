package controller

import "github.com/ovs-vxctl/ovs-vxctl/directory"

// SwitchOwner is one row of the directory's Switch table: which replica is
// master of a switch, and with which generation (the OpenFlow role
// request's generation_id).
type SwitchOwner = directory.SwitchOwner

// *directory.Client is the Directory a controller replica uses.
var _ Directory = (*directory.Client)(nil)
