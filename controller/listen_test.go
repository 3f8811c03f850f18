package controller

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseListen(t *testing.T) {
	good := map[string]string{
		"tcp:127.0.0.1:6653": "tcp:127.0.0.1:6653",
		"ssl:10.0.0.1:6653":  "ssl:10.0.0.1:6653",
		"tcp:[::1]:6653":     "tcp:[::1]:6653",
		"tcp:0.0.0.0:6653":   "tcp:0.0.0.0:6653",
		"tcp:[::]:6653":      "tcp:[::]:6653",
	}
	for in, want := range good {
		l, err := ParseListen(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if l.String() != want || l.TLS != strings.HasPrefix(in, "ssl:") {
			t.Errorf("%s parsed as %s (TLS %v)", in, l, l.TLS)
		}
	}
	bad := map[string]string{
		"tcp::6653":            "no IP address",
		":6653":                "want tcp:IP:PORT",
		"6653":                 "want tcp:IP:PORT",
		"ptcp:6653":            "want tcp:IP:PORT",
		"unix:/tmp/x":          "want tcp:IP:PORT",
		"tcp:localhost:6653":   "numeric IP",
		"tcp:127.0.0.1":        "want IP:PORT",
		"tcp:127.0.0.1:99999":  "numeric IP and port",
		"tcp:[fe80::1%lo]:665": "zoned",
	}
	for in, want := range bad {
		if _, err := ParseListen(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", in, err, want)
		}
	}
	if _, err := ParseMetricsListen(":9100"); err == nil {
		t.Error("metrics on an empty host accepted")
	}
	if ap, err := ParseMetricsListen("127.0.0.1:9100"); err != nil || ap.Port() != 9100 {
		t.Errorf("metrics address: %v %v", ap, err)
	}
}

func TestTLSFilesErrors(t *testing.T) {
	if _, err := (TLSFiles{}).Config(); err == nil || !strings.Contains(err.Error(), "--private-key") {
		t.Errorf("no files: %v", err)
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM"), 0o600)
	if _, err := (TLSFiles{PrivateKey: junk, Certificate: junk, CACert: junk}).Config(); err == nil || !strings.Contains(err.Error(), "junk.pem") {
		t.Errorf("junk files: %v", err)
	}
	if _, err := Listen(ListenAddr{TLS: true}, nil); err == nil {
		t.Error("ssl: listener without a TLS configuration opened")
	}
}

// A listener whose address is still bound waits for it to come free (a
// restart right after a crash), and gives up with EADDRINUSE after wait.
func TestListenTCPWaitsForTheAddress(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := held.Addr().String()
	if _, err := listenTCP(addr, 200*time.Millisecond); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("address held throughout: %v, want EADDRINUSE", err)
	}
	time.AfterFunc(300*time.Millisecond, func() { held.Close() })
	ln, err := listenTCP(addr, 5*time.Second)
	if err != nil {
		t.Fatalf("address freed after 300ms: %v", err)
	}
	ln.Close()
}
