package runtimes_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/testenv"
)

func TestReadTrustStore(t *testing.T) {
	d := javaFixtures(t)
	tests := []struct {
		name    string
		file    string
		format  string
		atLeast int // certificates
		empty   bool
	}{
		{name: "jlink's own JKS", file: filepath.Join(d, "linked", "rt", "lib", "security", "cacerts"), format: runtimes.FormatJKS, atLeast: 50},
		{name: "keytool's empty JKS", file: filepath.Join(d, "no-certs", "rt", "lib", "security", "cacerts"), format: runtimes.FormatJKS, empty: true},
		{name: "ca-certificates-java", file: "/etc/ssl/certs/java/cacerts", format: runtimes.FormatJKS, atLeast: 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			testenv.Require(t, err == nil, "needs %s: %v", tc.file, err)
			ts, err := runtimes.ReadTrustStore(data)
			if err != nil {
				t.Fatal(err)
			}
			if ts.Format != tc.format || (tc.empty && ts.Certificates != 0) || ts.Certificates < tc.atLeast {
				t.Errorf("ReadTrustStore(%s) = %+v, want %s with %d+ certificates (empty: %v)", tc.file, ts, tc.format, tc.atLeast, tc.empty)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("-----BEGIN CERTIFICATE-----"), {0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2}, {0x30, 0x03, 0x02, 0x01, 0x03}} {
		if ts, err := runtimes.ReadTrustStore(bad); err == nil {
			t.Errorf("ReadTrustStore(%q) = %+v, want an error", bad, ts)
		}
	}
	if _, err := runtimes.ReadTrustStore([]byte("text")); !errors.Is(err, runtimes.ErrTrustStoreFormat) {
		t.Errorf("ReadTrustStore(text) error = %v, want ErrTrustStoreFormat", err)
	}
}

// TestReadTrustStorePKCS12 reads the password-less PKCS#12 trust store that
// JDK 18 and later ship, made here by keytool.
func TestReadTrustStorePKCS12(t *testing.T) {
	keytool := "/usr/lib/jvm/temurin-25-jdk-amd64/bin/keytool"
	testenv.Require(t, fileExists(keytool), "needs %s", keytool)
	dir := t.TempDir()
	store := filepath.Join(dir, "cacerts")
	out, err := exec.Command(keytool, "-importkeystore", "-srckeystore", "/etc/ssl/certs/java/cacerts", "-srcstorepass", "changeit",
		"-destkeystore", store, "-deststoretype", "PKCS12", "-deststorepass", "changeit", "-noprompt").CombinedOutput()
	if err != nil {
		t.Fatalf("keytool: %v\n%s", err, out)
	}
	data, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := runtimes.ReadTrustStore(data)
	if err != nil || ts.Format != runtimes.FormatPKCS12 || ts.Certificates < 50 {
		t.Errorf("ReadTrustStore(PKCS12) = %+v, %v; want pkcs12 with 50+ certificates", ts, err)
	}
}

func FuzzReadTrustStore(f *testing.F) {
	if data, err := os.ReadFile("/etc/ssl/certs/java/cacerts"); err == nil {
		f.Add(data[:min(len(data), 4096)])
	}
	f.Add([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := runtimes.ReadTrustStore(data)
		if err == nil && ts.Certificates < 0 {
			t.Fatalf("negative count %+v", ts)
		}
		if err == nil && !bytes.HasPrefix(data, []byte{0xfe, 0xed, 0xfe, 0xed}) && ts.Format == runtimes.FormatJKS {
			t.Fatalf("JKS without its magic: %+v", ts)
		}
	})
}

// TestJavaProbeUpToDate recompiles probes/Probe.java as
// scripts/gen-runtime-lists does and expects the committed class.
func TestJavaProbeUpToDate(t *testing.T) {
	testenv.Require(t, fileExists(jdk17+"/bin/javac"), "needs %s/bin/javac", jdk17)
	dir := t.TempDir()
	if out, err := exec.Command(jdk17+"/bin/javac", "-Xlint:-options", "--release", "8", "-g:none", "-d", dir, "probes/Probe.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "Probe.class"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("probes/Probe.class")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("probes/Probe.class is not Probe.java compiled: run scripts/gen-runtime-lists")
	}
}
