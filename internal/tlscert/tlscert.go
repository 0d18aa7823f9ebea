// Package tlscert owns the server's TLS certificate: it reads it from PEM
// files, serves it to every handshake through tls.Config.GetCertificate,
// and replaces it on Reload (the daemon reloads on SIGHUP) without
// touching the connections already made. It also makes the self-signed
// certificate of the demo (SelfSigned).
//
// # Files
//
//	file | content
//	-----+------------------------------------------------------------------
//	cert | PEM CERTIFICATE blocks: the server's certificate first, then the
//	     | intermediate certificates a client needs to reach its root
//	key  | one PEM private key matching the first certificate: PKCS #8
//	     | ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1
//	     | ("EC PRIVATE KEY")
//
// # Reload
//
// Reload reads both files and checks that they form a pair before the
// new certificate replaces the old one, in one atomic pointer store: a
// handshake gets the old certificate or the new one, never a mix of the
// two files. A Reload that fails (a file missing or half written, a key
// of another certificate) changes nothing; the old certificate stays in
// force and the caller logs the error. A session keeps the TLS keys it
// negotiated: nothing after the handshake asks for the certificate again,
// so sessions survive any number of reloads.
//
// # Concurrency
//
// A Store is safe for concurrent use. GetCertificate never blocks;
// Reloads run one at a time (mu), so the last one to finish is the
// one in force.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest TLS version the server speaks: TLS 1.2, as
// RFC 8314 §4.1 and RFC 8996 ask (1.0 and 1.1 are deprecated).
const MinVersion = tls.VersionTLS12

// Store holds the certificate read from CertFile and KeyFile.
type Store struct {
	certFile, keyFile string // immutable

	mu  sync.Mutex // serializes Reload
	cur atomic.Pointer[tls.Certificate]
}

// Error is a certificate and key pair that could not be used.
type Error struct {
	Cert, Key string // the files
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("tls: certificate %s with key %s: %v", e.Cert, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads the certificate chain in certFile and its key in keyFile.
func Load(certFile, keyFile string) (*Store, error) {
	s := &Store{certFile: certFile, keyFile: keyFile}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again and, when they hold a usable pair, makes
// it the certificate of every later handshake and returns it. On error
// the certificate in force stays (an *Error says why).
func (s *Store) Reload() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err == nil && cert.Leaf == nil {
		// GODEBUG=x509keypairleaf=0 leaves it to us; callers log it.
		cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
	}
	if err != nil {
		return nil, &Error{Cert: s.certFile, Key: s.keyFile, Err: err}
	}
	s.cur.Store(&cert)
	return &cert, nil
}

// Certificate returns the certificate in force.
func (s *Store) Certificate() *tls.Certificate { return s.cur.Load() }

// GetCertificate is tls.Config.GetCertificate: the certificate in force,
// whatever the client asks for (one certificate serves every name).
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// ServerConfig returns a server configuration that presents the
// certificate in force at each handshake, with MinVersion.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{GetCertificate: s.GetCertificate, MinVersion: MinVersion}
}

// SelfSigned makes a new ECDSA P-256 key and a certificate for it,
// signed by itself, for a TLS server named commonName and hosts (DNS
// names, or IP addresses in text form), valid from an hour before now
// (clocks of clients that run a little late) until now+validity. It
// returns both PEM-encoded, the key as PKCS #8. The certificate is not a
// CA: a client that trusts it trusts this server and nothing else.
func SelfSigned(commonName string, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	// RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the
	// public key.
	ski := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
		AuthorityKeyId:        ski[:20],
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}
