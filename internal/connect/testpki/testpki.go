// Package testpki makes a throwaway certificate authority with a server and
// client certificates, written as PEM files, for tests of TLS and mTLS.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA and what it signed, as files in a temporary directory.
type PKI struct {
	// CAFile is the CA certificate (PEM): what clients trust as the
	// server's CA and what the server trusts for client certificates.
	CAFile string
	// ServerCertFile and ServerKeyFile are valid for the names given to New.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate the CA
	// signed.
	ClientCertFile, ClientKeyFile string
	// ExpiredCertFile and ExpiredKeyFile are a client certificate that
	// expired yesterday.
	ExpiredCertFile, ExpiredKeyFile string
	// OtherClientCertFile and OtherClientKeyFile are a client certificate
	// signed by another CA, which the server does not trust.
	OtherClientCertFile, OtherClientKeyFile string

	caPool     *x509.CertPool
	serverPair tls.Certificate
}

// New makes the CA and certificates; serverNames are the DNS names and IP
// addresses the server certificate is valid for.
func New(t testing.TB, serverNames ...string) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{caPool: x509.NewCertPool()}
	ca, caKey := newCA(t, "matchmaker test CA")
	p.caPool.AddCert(ca)
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)

	now := time.Now()
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "matchmaker test server"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, name := range serverNames {
		if ip := net.ParseIP(name); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, name)
		}
	}
	p.ServerCertFile, p.ServerKeyFile = issue(t, dir, "server", server, ca, caKey)
	var err error
	if p.serverPair, err = tls.LoadX509KeyPair(p.ServerCertFile, p.ServerKeyFile); err != nil {
		t.Fatal(err)
	}

	client := func(cn string, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn},
			NotBefore:   now.Add(-48 * time.Hour),
			NotAfter:    notAfter,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	p.ClientCertFile, p.ClientKeyFile = issue(t, dir, "client", client("matchmaker worker", now.Add(24*time.Hour)), ca, caKey)
	p.ExpiredCertFile, p.ExpiredKeyFile = issue(t, dir, "expired", client("matchmaker expired", now.Add(-24*time.Hour)), ca, caKey)
	other, otherKey := newCA(t, "some other CA")
	p.OtherClientCertFile, p.OtherClientKeyFile = issue(t, dir, "other-client", client("stranger", now.Add(24*time.Hour)), other, otherKey)
	return p
}

// ServerTLS is the server's TLS configuration; with requireClientCert it
// accepts only clients with a certificate the CA signed. It offers HTTP/2
// by ALPN, which gRPC clients insist on.
func (p *PKI) ServerTLS(requireClientCert bool) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{p.serverPair},
		NextProtos:   []string{"h2"},
		MinVersion:   tls.VersionTLS12,
	}
	if requireClientCert {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.caPool
	}
	return c
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-72 * time.Hour),
		NotAfter:              time.Now().Add(72 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue signs tmpl with the CA and writes <name>.pem and <name>-key.pem.
func issue(t testing.TB, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
