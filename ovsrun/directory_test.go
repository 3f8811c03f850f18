package ovsrun

import "testing"

// The output of `ovs-appctl cluster/status` of OVS 3.1 (abridged).
const clusterStatus = `71ec
Name: OVS_VXCTL_Directory
Cluster ID: 058d (058df872-80e8-4ac9-844f-1009060d23dc)
Server ID: 71ec (71ec53b4-f8fb-4ba0-8ee1-bcdf95608fdb)
Address: tcp:192.168.50.241:6642
Status: cluster member
Role: leader
Term: 3
Leader: self
Vote: self

Last Election started 9067 ms ago, reason: timeout
`

func TestParseClusterStatus(t *testing.T) {
	s := ParseClusterStatus(clusterStatus)
	if !s.Member() || s.Role != "leader" || s.Term != "3" || s.Leader != "self" {
		t.Fatalf("%+v", s)
	}
	if s := ParseClusterStatus("Status: joining cluster\nRole: follower\n"); s.Member() || s.Role != "follower" {
		t.Fatalf("%+v", s)
	}
}

func TestClusterMemberStartRefusesNonTCP(t *testing.T) {
	m := &ClusterMember{Dir: t.TempDir(), Remote: "ssl:127.0.0.1:6641"}
	if err := m.Start(t.Context()); err == nil {
		t.Fatal("started an ssl: member without certificates")
	}
	if m.Running() {
		t.Fatal("running")
	}
}
