package ovsdb

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ConnectOption changes how Connect reaches ovsdb-server.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	tls *SSLFiles
}

// WithTLSFiles gives Connect the client's private key, certificate and CA
// certificate for an ssl: endpoint (ovs-vsctl's --private-key, --certificate
// and --ca-cert). nil files change nothing.
func WithTLSFiles(files *SSLFiles) ConnectOption {
	return func(o *connectOptions) { o.tls = files }
}

// clientTLS is ClientTLS for Connect, whose files come from --db-*.
func clientTLS(files *SSLFiles) (*tls.Config, error) {
	if files == nil || !files.Complete() {
		return nil, errors.New("an ssl: OVSDB endpoint needs --db-private-key, --db-certificate and --db-ca-cert")
	}
	return ClientTLS(*files)
}

// Complete says whether all three files are given.
func (f SSLFiles) Complete() bool {
	return f.PrivateKey != "" && f.Certificate != "" && f.CACert != ""
}

// ClientTLS is the TLS configuration of a client of an ssl: OVSDB server
// (a host's Open_vSwitch database, a hardware VTEP's). Like OVS's own tools
// it checks that the server's certificate chains to the CA, not the name in
// it: ovs-pki's certificates name no host.
func ClientTLS(files SSLFiles) (*tls.Config, error) {
	if !files.Complete() {
		return nil, errors.New("a TLS client needs a private key, a certificate and a CA certificate")
	}
	pair, err := tls.LoadX509KeyPair(files.Certificate, files.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("loading the OVSDB client's key pair (%s, %s): %w", files.Certificate, files.PrivateKey, err)
	}
	pem, err := os.ReadFile(files.CACert)
	if err != nil {
		return nil, fmt.Errorf("reading the OVSDB CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the OVSDB CA certificate %s holds no PEM certificate", files.CACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// The chain is verified below, against pool; only the host name
		// check is skipped.
		InsecureSkipVerify:    true, //nolint:gosec
		VerifyPeerCertificate: verifyChain(pool),
	}, nil
}

// verifyChain checks the server's certificate chain against roots.
func verifyChain(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the OVSDB server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, der := range raw {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("parsing the OVSDB server's certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("the OVSDB server's certificate: %w", err)
		}
		return nil
	}
}
