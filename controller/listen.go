package controller

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// ListenAddr is a parsed --listen value: "tcp:IP:PORT" or "ssl:IP:PORT"
// (an IPv6 address in brackets, as OVS writes it: "tcp:[::1]:6653").
type ListenAddr struct {
	TLS  bool
	Addr netip.AddrPort
}

func (l ListenAddr) String() string {
	scheme := "tcp"
	if l.TLS {
		scheme = "ssl"
	}
	return scheme + ":" + l.Addr.String()
}

// ParseListen parses a --listen value. The address must be given: an empty
// host ("tcp::6653") is refused, so the controller never listens on every
// address by accident; 0.0.0.0 or [::] asks for that explicitly.
func ParseListen(s string) (ListenAddr, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || (scheme != "tcp" && scheme != "ssl") {
		return ListenAddr{}, fmt.Errorf("listen address %q: want tcp:IP:PORT or ssl:IP:PORT", s)
	}
	ap, err := parseHostPort(rest)
	if err != nil {
		return ListenAddr{}, fmt.Errorf("listen address %q: %w", s, err)
	}
	return ListenAddr{TLS: scheme == "ssl", Addr: ap}, nil
}

// parseHostPort parses IP:PORT with a mandatory IP.
func parseHostPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want IP:PORT: %w", err)
	}
	if host == "" {
		return netip.AddrPort{}, errors.New("no IP address: give one (0.0.0.0 or [::] to listen on every address)")
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want IP:PORT with a numeric IP and port: %w", err)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, errors.New("zoned IPv6 addresses are not supported")
	}
	return ap, nil
}

// ParseMetricsListen parses --metrics-listen: "IP:PORT" (or "tcp:IP:PORT"),
// with the same rule as ParseListen about the address.
func ParseMetricsListen(s string) (netip.AddrPort, error) {
	ap, err := parseHostPort(strings.TrimPrefix(s, "tcp:"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("metrics address %q: %w", s, err)
	}
	return ap, nil
}

// TLSFiles are the PEM files of an ssl: listener, as ovs-pki makes them:
// the controller's private key and certificate, and the CA certificate
// that signed the switches' certificates (ovs-pki's switchca/cacert.pem).
type TLSFiles struct {
	PrivateKey  string
	Certificate string
	CACert      string
}

// Config loads the files into a server configuration that requires every
// switch to present a certificate signed by the CA (mutual TLS), TLS 1.2 at
// least.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.PrivateKey == "" || f.Certificate == "" || f.CACert == "" {
		return nil, errors.New("an ssl: listener needs --private-key, --certificate and --ca-cert")
	}
	cert, err := tls.LoadX509KeyPair(f.Certificate, f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("loading the certificate %s and private key %s: %w", f.Certificate, f.PrivateKey, err)
	}
	pem, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", f.CACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// Listen opens the listener a ListenAddr asks for; tlsConfig is required
// for ssl: and ignored for tcp:.
func Listen(l ListenAddr, tlsConfig *tls.Config) (net.Listener, error) {
	if l.TLS && tlsConfig == nil {
		return nil, fmt.Errorf("listening on %s: no TLS configuration (--private-key, --certificate, --ca-cert)", l)
	}
	ln, err := listenTCP(l.Addr.String(), bindRetry)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", l, err)
	}
	if l.TLS {
		return tls.NewListener(ln, tlsConfig), nil
	}
	return ln, nil
}

// bindRetry is how long a listener waits for its address to come free. A
// controller restarted right after a crash (systemd's Restart=, a test)
// can find the dead process's socket still bound for a moment while the
// kernel finishes tearing it down.
const bindRetry = 5 * time.Second

// listenTCP listens on addr, retrying while the address is in use, for at
// most wait.
func listenTCP(addr string, wait time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(wait)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// certNamesHost reports whether a switch's certificate names host: a SAN DNS
// name equal to it, or a subject CN equal to it or beginning with
// "<host> id:", as ovs-pki writes them ("host1 id:<uuid>"). The CA vouches
// for the name; the name says which host's datapath IDs the switch may
// claim.
func certNamesHost(cert *x509.Certificate, host string) bool {
	if host == "" {
		return false
	}
	for _, n := range cert.DNSNames {
		if n == host {
			return true
		}
	}
	cn := cert.Subject.CommonName
	return cn == host || strings.HasPrefix(cn, host+" id:")
}

// certNames lists the names a certificate carries, for messages.
func certNames(cert *x509.Certificate) string {
	names := []string{fmt.Sprintf("CN %q", cert.Subject.CommonName)}
	for _, n := range cert.DNSNames {
		names = append(names, fmt.Sprintf("DNS %q", n))
	}
	return strings.Join(names, ", ")
}
