package broker_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/broker"
)

// authConf is a nats-server config file with one user, as an operator writes
// from deploy/nats/auth.conf.
const authConf = `authorization { users: [ { user: sheetd, password: "s3cret-for-test" } ] }
`

// TestEmbeddedRefusesPublicListenWithoutAuth: an address other hosts reach is
// refused with no config file, or with one that sets no users, by an error
// naming the address and the fix; loopback needs none.
func TestEmbeddedRefusesPublicListenWithoutAuth(t *testing.T) {
	noUsers := filepath.Join(t.TempDir(), "plain.conf")
	if err := os.WriteFile(noUsers, []byte("max_payload: 8MB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, listen, conf string }{
		{"every interface", "0.0.0.0:-1", ""},
		{"every IPv6 interface", "[::]:-1", ""},
		{"empty host", ":-1", ""},
		{"a host name", "sheetd.example:-1", ""},
		{"config without users", "0.0.0.0:-1", noUsers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emb, err := broker.StartEmbeddedWith(broker.EmbeddedConfig{StoreDir: t.TempDir(), Listen: tc.listen, ConfigFile: tc.conf})
			if err == nil {
				emb.Shutdown()
				t.Fatalf("listening on %s without authentication was accepted", tc.listen)
			}
			if !errors.Is(err, broker.ErrEmbedded) || !strings.Contains(err.Error(), tc.listen) ||
				!strings.Contains(err.Error(), "SHEETPIPE_NATS_CONFIG") || !strings.Contains(err.Error(), "127.0.0.1") {
				t.Fatalf("error %q does not name the address and the fix", err)
			}
		})
	}
	for _, listen := range []string{"127.0.0.1:-1", "localhost:-1"} {
		emb, err := broker.StartEmbedded(t.TempDir(), listen)
		if err != nil {
			t.Fatalf("loopback %s: %v", listen, err)
		}
		emb.Shutdown()
	}
}

// TestEmbeddedWithAuthOnEveryInterface: with a config file of users the server
// listens on 0.0.0.0 and lets in only those who log in.
func TestEmbeddedWithAuthOnEveryInterface(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(conf, []byte(authConf), 0o600); err != nil {
		t.Fatal(err)
	}
	emb, err := broker.StartEmbeddedWith(broker.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "0.0.0.0:-1", ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	if nc, err := nats.Connect(emb.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials got in")
	}
	if nc, err := nats.Connect(emb.ClientURL(), nats.UserInfo("sheetd", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password got in")
	}
	nc, err := nats.Connect(emb.ClientURL(), nats.UserInfo("sheetd", "s3cret-for-test"))
	if err != nil {
		t.Fatalf("the configured user: %v", err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream for the configured user: %v", err)
	}
}

func TestEmbeddedBadConfigFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("authorization { users: [ \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{bad, filepath.Join(t.TempDir(), "missing.conf")} {
		if emb, err := broker.StartEmbeddedWith(broker.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ConfigFile: conf}); err == nil {
			emb.Shutdown()
			t.Fatalf("config file %s accepted", conf)
		} else if !strings.Contains(err.Error(), conf) {
			t.Fatalf("error %q does not name the file", err)
		}
	}
}
