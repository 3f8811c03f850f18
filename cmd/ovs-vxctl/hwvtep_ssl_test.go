package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep/vtepdbtest"
)

// fdb, diff-flows, show and destroy reach an ssl: hardware_vtep database
// with the flags apply takes, and refuse it, naming them, without.
func TestHardwareFDBAndDiffOverSSL(t *testing.T) {
	d := vtepdbtest.Start(t, vtepdbtest.Options{SSL: true})
	d.Switch(t, "tor1", "10.0.0.9", "p0", "p1", "p2")
	file := writeFile(t, "hw.yaml", hwTopologyYAML(d.SSL))
	flags := []string{"--private-key", d.Client.PrivateKey, "--certificate", d.Client.Certificate, "--ca-cert", d.Client.CACert}

	for _, verb := range []string{"fdb", "diff-flows", "apply", "show", "destroy"} {
		code, out, errOut := runCLI(t, verb, "-f", file, "--host", "tor1")
		if code != 1 || !strings.Contains(errOut, "needs --private-key, --certificate and --ca-cert") {
			t.Errorf("%s over ssl: without TLS files: exit %d, stdout %q, stderr %q; want exit 1 naming the flags", verb, code, out, errOut)
		}
	}
	for _, verb := range []string{"fdb", "diff-flows", "apply", "show", "destroy"} {
		code, _, errOut := runCLI(t, verb, "-f", file, "--host", "tor1", "--private-key", d.Client.PrivateKey)
		if code != 1 || !strings.Contains(errOut, "needs --private-key, --certificate and --ca-cert") {
			t.Errorf("%s with --private-key only: exit %d, stderr %q", verb, code, errOut)
		}
	}
	// A client certificate the database does not trust (signed by the
	// switch CA, not the controller CA) is refused by the server.
	code, _, errOut := runCLI(t, "fdb", "-f", file, "--host", "tor1", "--private-key", d.Dir+"/vtep-privkey.pem",
		"--certificate", d.Dir+"/vtep-cert.pem", "--ca-cert", d.Client.CACert)
	if code != 1 || !strings.Contains(errOut, d.SSL) {
		t.Errorf("fdb with an untrusted client certificate: exit %d, stderr %q", code, errOut)
	}
	t.Logf("untrusted client certificate: %s", strings.TrimSpace(errOut))

	diffArgs := append([]string{"diff-flows", "-f", file, "--host", "tor1"}, flags...)
	code, out, errOut := runCLI(t, diffArgs...)
	if code != 2 || !containsLine(strings.Split(out, "\n"), "+logical_switch a (tunnel_key 100, replication_mode source_node)") {
		t.Errorf("diff-flows over ssl: before apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, append([]string{"apply", "-f", file, "--host", "tor1"}, flags...)...); code != 0 {
		t.Fatalf("apply over ssl: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, diffArgs...); code != 0 || out != "" {
		t.Errorf("diff-flows over ssl: after apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, append([]string{"fdb", "-f", file, "--host", "tor1", "--format", "json"}, flags...)...)
	var entries []hwFDBEntry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 3 {
		t.Errorf("fdb over ssl: exit %d, %d entries, want the 3 flood entries\n%s%s", code, len(entries), out, errOut)
	}
	if code, out, errOut := runCLI(t, append([]string{"show", "-f", file, "--host", "tor1"}, flags...)...); code != 0 || !strings.Contains(out, "100") {
		t.Errorf("show over ssl: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, append([]string{"destroy", "-f", file, "--host", "tor1"}, flags...)...); code != 0 {
		t.Errorf("destroy over ssl: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, diffArgs...); code != 2 {
		t.Errorf("diff-flows over ssl: after destroy: exit %d, want 2 (the switch lacks everything again)\n%s%s", code, out, errOut)
	}
}

// A switch's strings reach the table output escaped and cut: no terminal
// escape, no newline breaking the columns.
func TestHardwareTablesEscapeTheSwitchsStrings(t *testing.T) {
	st := hwState()
	st.Description = "evil\x1b]0;owned\x07"
	st.Switches[0].Name = "theirs\nFAKE ROW"
	st.Switches[0].LocalMACs[0].MAC = strings.Repeat("a", 5000)
	st.Switches[0].LocalMACs[0].IP = "\x1b[2J"
	var b strings.Builder
	if err := printHardwareVTEP(&b, st); err != nil {
		t.Fatal(err)
	}
	entries := hardwareFDB(st, hwTopo(t), 0)
	if err := printHardwareFDB(&b, entries); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\x07", "\nFAKE ROW", strings.Repeat("a", 65)} {
		if strings.Contains(out, bad) {
			t.Errorf("table output contains %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`"evil\x1b]0;owned\a"`, `"theirs\nFAKE ROW"`, strings.Repeat("a", 64) + "...", `"\x1b[2J"`} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
}
