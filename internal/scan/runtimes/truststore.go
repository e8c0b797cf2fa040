package runtimes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// Trust store formats (TrustStore.Format).
const (
	FormatJKS    = "jks"
	FormatPKCS12 = "pkcs12"
)

// ErrTrustStoreFormat is returned for a file that is neither a JKS nor a
// PKCS#12 key store.
var ErrTrustStoreFormat = errors.New("not a JKS or PKCS#12 key store")

// TrustStore is what a Java trust store (lib/security/cacerts) holds.
type TrustStore struct {
	Format string
	// Certificates counts the trusted-certificate entries: the trust
	// anchors PKIX validation starts from.
	Certificates int
}

// jksMagic and jceksMagic start JKS and JCEKS files; anything else Java
// reads as a trust store is PKCS#12 (DER, starting with a SEQUENCE).
const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// defaultStorePasswords are tried in order: Debian's ca-certificates-java
// and OpenJDK up to 17 write JKS protected with "changeit"; OpenJDK 18 and
// later ship a password-less PKCS#12 (JDK-8275252).
var defaultStorePasswords = []string{"changeit", ""}

// ReadTrustStore reads a Java trust store the way the JVM does when no
// password is configured: entries are read, and a file whose integrity
// check needs a password other than the defaults still counts (Java does not
// verify a trust store it is given no password for).
func ReadTrustStore(data []byte) (TrustStore, error) {
	if len(data) >= 4 {
		switch binary.BigEndian.Uint32(data) {
		case jksMagic:
			return readJKS(data)
		case jceksMagic:
			return TrustStore{}, fmt.Errorf("JCEKS key store: %w", ErrTrustStoreFormat)
		}
	}
	if len(data) == 0 || data[0] != 0x30 {
		return TrustStore{}, ErrTrustStoreFormat
	}
	var firstErr error
	for _, pw := range defaultStorePasswords {
		certs, err := pkcs12.DecodeTrustStore(data, pw)
		if err == nil {
			return TrustStore{Format: FormatPKCS12, Certificates: len(certs)}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, pkcs12.ErrIncorrectPassword) && !strings.Contains(err.Error(), "no MAC") {
			break
		}
	}
	return TrustStore{}, fmt.Errorf("PKCS#12 key store: %w", firstErr)
}

func readJKS(data []byte) (TrustStore, error) {
	ks := keystore.New()
	err := ks.Load(bytes.NewReader(data), []byte(defaultStorePasswords[0]))
	n := 0
	for _, a := range ks.Aliases() {
		if ks.IsTrustedCertificateEntry(a) {
			n++
		}
	}
	// The digest is checked after every entry was read: a mismatch means
	// another password, not a damaged file.
	if err != nil && !(strings.Contains(err.Error(), "invalid digest") && len(ks.Aliases()) > 0) {
		return TrustStore{}, fmt.Errorf("JKS key store: %w", err)
	}
	return TrustStore{Format: FormatJKS, Certificates: n}, nil
}
