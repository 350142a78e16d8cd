package service

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestConnectLogsIn connects to real servers that demand a password or a client
// certificate: the right settings get in, wrong or missing ones are refused.
func TestConnectLogsIn(t *testing.T) {
	pki := newTestPKI(t)
	passwordServer := func(t *testing.T) *server.Server {
		return startAuthServer(t, &server.Options{Username: "sheetd", Password: "s3cret"})
	}
	tlsServer := func(t *testing.T) *server.Server {
		return startAuthServer(t, &server.Options{TLS: true, TLSVerify: true, TLSTimeout: 5, TLSConfig: pki.serverTLS})
	}
	tests := []struct {
		name    string
		server  func(*testing.T) *server.Server
		cfg     Config
		wantErr string // empty: the connection succeeds
		wantTLS bool
	}{
		{"user and password", passwordServer, Config{NATSUser: "sheetd", NATSPassword: "s3cret"}, "", false},
		{"wrong password", passwordServer, Config{NATSUser: "sheetd", NATSPassword: "guess"}, "authorization violation", false},
		{"no credentials", passwordServer, Config{}, "authorization violation", false},
		{"client certificate", tlsServer, Config{NATSTLSCA: pki.ca, NATSTLSCert: pki.cert, NATSTLSKey: pki.key}, "", true},
		// The server refuses in the handshake or right after it (TLS 1.3): the
		// wording varies, the refusal does not.
		{"no client certificate", tlsServer, Config{NATSTLSCA: pki.ca}, "tls", false},
		{"server not trusted", tlsServer, Config{NATSTLSCert: pki.cert, NATSTLSKey: pki.key}, "unknown authority", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			cfg := tc.cfg
			cfg.NATSURL = srv.ClientURL()
			nc, err := connect(cfg.NATSURL, cfg, slog.New(slog.DiscardHandler))
			if tc.wantErr != "" {
				if err == nil {
					nc.Close()
					t.Fatalf("connected; want an error mentioning %q", tc.wantErr)
				}
				if !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
					t.Fatalf("error %q, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer nc.Close()
			if _, err := nc.RTT(); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if tc.wantTLS {
				state, err := nc.TLSConnectionState()
				if err != nil || len(state.VerifiedChains) == 0 {
					t.Fatalf("connection is not verified TLS: %v", err)
				}
			}
		})
	}
}

func TestConfigNATSAuth(t *testing.T) {
	pki := newTestPKI(t)
	url := "nats://127.0.0.1:4222"
	tests := []struct {
		name string
		env  map[string]string
		want string // empty: valid
	}{
		{"user and password", map[string]string{"NATS_URL": url, "NATS_USER": "sheetd", "NATS_PASSWORD": "pw"}, ""},
		{"tls files", map[string]string{"NATS_URL": url, "NATS_TLS_CA": pki.ca, "NATS_TLS_CERT": pki.cert, "NATS_TLS_KEY": pki.key}, ""},
		{"embedded server ignores them", map[string]string{"NATS_CREDS": "/no/such.creds", "NATS_TLS_CERT": "/no/cert.pem"}, ""},
		{"certificate without key", map[string]string{"NATS_URL": url, "NATS_TLS_CERT": pki.cert}, "NATS_TLS_CERT and NATS_TLS_KEY: set both"},
		{"key without certificate", map[string]string{"NATS_URL": url, "NATS_TLS_KEY": pki.key}, "NATS_TLS_CERT and NATS_TLS_KEY: set both"},
		{"missing CA file", map[string]string{"NATS_URL": url, "NATS_TLS_CA": "/no/ca.pem"}, `NATS_TLS_CA="/no/ca.pem"`},
		{"CA is a directory", map[string]string{"NATS_URL": url, "NATS_TLS_CA": t.TempDir()}, "is a directory"},
		{"missing creds file", map[string]string{"NATS_URL": url, "NATS_CREDS": "/no/such.creds"}, `NATS_CREDS="/no/such.creds"`},
		{"password without user", map[string]string{"NATS_URL": url, "NATS_PASSWORD": "pw"}, "NATS_PASSWORD is set without NATS_USER"},
		{"creds and user", map[string]string{"NATS_URL": url, "NATS_CREDS": pki.ca, "NATS_USER": "sheetd"}, "NATS_CREDS and NATS_USER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestHelpHidesTheNATSPassword(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg.RegisterFlags(fs, func(k string) string {
		return map[string]string{"NATS_USER": "sheetd", "NATS_PASSWORD": "pw-from-env"}[k]
	})
	fs.PrintDefaults()
	if strings.Contains(out.String(), "pw-from-env") || cfg.NATSPassword != "pw-from-env" || cfg.NATSUser != "sheetd" {
		t.Fatalf("help shows the password, or it was not read:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "$NATS_PASSWORD") {
		t.Fatalf("help does not name $NATS_PASSWORD:\n%s", out.String())
	}
	if err := fs.Parse([]string{"-nats-password", "pw-from-flag"}); err != nil || cfg.NATSPassword != "pw-from-flag" {
		t.Fatalf("flag not applied: %v %q", err, cfg.NATSPassword)
	}
}

func startAuthServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files, and the server's TLS configuration.
type testPKI struct {
	ca, cert, key string
	serverTLS     *tls.Config
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sheetpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	srvKey, srvDER := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	cliKey, cliDER := issue(3, "sheetd", x509.ExtKeyUsageClientAuth)

	p := testPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "client.pem"), key: filepath.Join(dir, "client-key.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	writePEM(t, p.cert, "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.key, "EC PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	p.serverTLS = &tls.Config{MinVersion: tls.VersionTLS12, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
