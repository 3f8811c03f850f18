package topology

import (
	"slices"
	"testing"
)

func TestControllerTargetsAndDirectory(t *testing.T) {
	cases := []struct {
		name      string
		yaml      string
		ctl       string
		ctls, dir []string
	}{
		{"single string as today", hdr + "controller: tcp:10.0.0.9:6653\n" + hosts3,
			"tcp:10.0.0.9:6653", []string{"tcp:10.0.0.9:6653"}, nil},
		{"none", hdr + hosts3, "", nil, nil},
		{"list of replicas, canonical IPv6", hdr + "controller: [tcp:10.0.0.9:6653, 'ssl:[2001:db8::9]:6653']\n" + hosts3,
			"tcp:10.0.0.9:6653", []string{"tcp:10.0.0.9:6653", "ssl:[2001:db8::9]:6653"}, nil},
		{"one-item list", hdr + "controller:\n  - tcp:10.0.0.9:6654\n" + hosts3,
			"tcp:10.0.0.9:6654", []string{"tcp:10.0.0.9:6654"}, nil},
		{"directory of three", hdr + "controller: tcp:10.0.0.9:6653\n" +
			"directory: [tcp:10.0.0.9:6641, tcp:10.0.0.9:6642, ssl:10.0.0.10:6641]\n" + hosts3,
			"tcp:10.0.0.9:6653", []string{"tcp:10.0.0.9:6653"},
			[]string{"tcp:10.0.0.9:6641", "tcp:10.0.0.9:6642", "ssl:10.0.0.10:6641"}},
		{"directory as one string", hdr + "directory: tcp:10.0.0.9:6641\n" + hosts3,
			"", nil, []string{"tcp:10.0.0.9:6641"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			top := mustParse(t, c.yaml)
			if top.Controller != c.ctl || !slices.Equal(top.Controllers, c.ctls) || !slices.Equal(top.Directory, c.dir) {
				t.Errorf("controller %q, controllers %q, directory %q; want %q, %q, %q",
					top.Controller, top.Controllers, top.Directory, c.ctl, c.ctls, c.dir)
			}
		})
	}
}

func TestControllerTargetsAndDirectoryProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []want
	}{
		{"empty controller list", hdr + "controller: []\n" + hosts3, []want{{"controller", "at least one target", 2}}},
		{"bad item", hdr + "controller: [tcp:10.0.0.9:6653, unix:/x]\n" + hosts3,
			[]want{{"controller[1]", "want tcp:IP:PORT or ssl:IP:PORT", 2}}},
		{"duplicate target", hdr + "controller:\n  - tcp:10.0.0.9:6653\n  - tcp:10.0.0.9:6653\n" + hosts3,
			[]want{{"controller[1]", "10.0.0.9:6653 is already used by controller[0]", 4}}},
		{"same address tcp and ssl", hdr + "controller: [tcp:10.0.0.9:6653, ssl:10.0.0.9:6653]\n" + hosts3,
			[]want{{"controller[1]", "10.0.0.9:6653 is already used by controller[0]", 2}}},
		{"mapping item", hdr + "controller: [{a: 1}]\n" + hosts3, []want{{"controller[0]", "want a string, got a mapping", 2}}},
		{"controller mapping", hdr + "controller: {a: 1}\n" + hosts3, []want{{"controller", "want a string, got a mapping", 2}}},
		{"bad list still counts as given in controller mode", hostsWith(0, "mode: controller")[:len(hdr)] +
			"controller: [tcp:10.0.0.9]\n" + hostsWith(0, "mode: controller")[len(hdr):],
			[]want{{"controller[0]", "want tcp:IP:PORT", 2}}},
		{"empty directory", hdr + "directory: []\n" + hosts3, []want{{"directory", "at least one target", 2}}},
		{"directory hostname", hdr + "directory: [tcp:db.example:6641]\n" + hosts3,
			[]want{{"directory[0]", "want tcp:IP:PORT", 2}}},
		{"directory unix", hdr + "directory: [unix:/run/db.sock]\n" + hosts3,
			[]want{{"directory[0]", "want tcp:IP:PORT or ssl:IP:PORT", 2}}},
		{"directory duplicate", hdr + "directory: [tcp:10.0.0.9:6641, tcp:10.0.0.9:6642, tcp:10.0.0.9:6641]\n" + hosts3,
			[]want{{"directory[2]", "10.0.0.9:6641 is already used by directory[0]", 2}}},
		{"directory port 0", hdr + "directory: [tcp:10.0.0.9:0]\n" + hosts3, []want{{"directory[0]", "port 0", 2}}},
		{"directory on a controller's address", hdr + "controller: tcp:10.0.0.9:6653\ndirectory: [tcp:10.0.0.9:6653]\n" + hosts3,
			[]want{{"directory[0]", "10.0.0.9:6653 is also a controller target", 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkProblems(t, c.yaml, c.want) })
	}
}
