package web

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// keyPair serves a certificate from files, loading them again when they
// change, so a renewed certificate (cert-manager, certbot) needs no
// restart. A renewal that fails to load keeps the last good pair.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("HTTPS needs both a certificate (--tls-cert) and its key (--tls-key)")
	}
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) load() error {
	st, err := os.Stat(kp.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.modTime = &cert, st.ModTime()
	return nil
}

func (kp *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if now := time.Now(); now.Sub(kp.checked) > 10*time.Second {
		kp.checked = now
		if st, err := os.Stat(kp.certFile); err == nil && !st.ModTime().Equal(kp.modTime) {
			kp.load() //nolint:errcheck // keep serving the last good pair
		}
	}
	return kp.cert, nil
}
