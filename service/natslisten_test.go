package service_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/service"
)

// TestEmbeddedNATSOnEveryInterfaceNeedsAuth: sheetd refuses to start its
// embedded server on 0.0.0.0 without users, naming the address and the fix;
// with SHEETPIPE_NATS_CONFIG's users it starts, logs itself in with
// NATS_USER/NATS_PASSWORD, and the server turns away a client without them.
func TestEmbeddedNATSOnEveryInterfaceNeedsAuth(t *testing.T) {
	_, port, err := net.SplitHostPort(baseConfig(t).NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	listen := "0.0.0.0:" + port

	t.Run("refused without users", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.NATSListen = listen
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := service.Run(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), listen) || !strings.Contains(err.Error(), "SHEETPIPE_NATS_CONFIG") {
			t.Fatalf("Run: %v, want a refusal naming %s and SHEETPIPE_NATS_CONFIG", err, listen)
		}
	})

	t.Run("accepted with users", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "auth.conf")
		if err := os.WriteFile(conf, []byte(`authorization { users: [ { user: sheetd, password: "pw-for-test" } ] }`), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t)
		cfg.NATSListen, cfg.NATSConfig, cfg.NATSUser, cfg.NATSPassword = listen, conf, "sheetd", "pw-for-test"
		runService(t, cfg)
		waitStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusOK, "", 60*time.Second)
		url := "nats://127.0.0.1:" + port
		if nc, err := nats.Connect(url); err == nil {
			nc.Close()
			t.Fatal("a client without credentials got into the embedded server")
		}
		nc, err := nats.Connect(url, nats.UserInfo("sheetd", "pw-for-test"))
		if err != nil {
			t.Fatalf("the configured user: %v", err)
		}
		nc.Close()
	})
}
