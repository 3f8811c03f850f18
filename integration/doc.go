// Package integration holds the end-to-end tests of ovs-vxctl: they build the
// ovs-vxctl binary, bring up the example topologies with `ovs-vxctl lab up`
// (one network namespace and one userspace Open vSwitch per host) and drive
// the CLI as a user would: ping across the VXLAN overlay, capture the
// underlay, compare installed flows with compiled and golden ones, re-apply,
// dry-run, destroy and tear the lab down.
//
// The tests need root and Open vSwitch, tcpdump and tshark; they fail (not
// skip) when those are missing, and are skipped only with -short.
package integration
