package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/webhook"
)

func TestCheckURLRefusesInternalAddresses(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"loopback v4", "http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"},
		{"localhost", "http://localhost/hook", "is a loopback address"},
		{"loopback v6", "http://[::1]/hook", "::1 is a loopback address"},
		{"private 10/8", "https://10.0.0.1/hook", "10.0.0.1 is a private address"},
		{"private 192.168/16", "https://192.168.1.1/hook", "192.168.1.1 is a private address"},
		{"private 172.16/12", "https://172.20.0.5/hook", "172.20.0.5 is a private address"},
		{"metadata", "http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"},
		{"link-local v6", "http://[fe80::1%25eth0]/hook", "fe80::1 is a link-local address"},
		{"unique local v6", "http://[fd00::1]/hook", "fd00::1 is a private address"},
		{"unspecified", "http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"},
		{"multicast", "http://224.0.0.1/hook", "224.0.0.1 is a multicast address"},
		{"cgnat", "http://100.64.0.1/hook", "100.64.0.1 is a shared (CGNAT) address"},
		{"v4-mapped loopback", "http://[::ffff:127.0.0.1]/hook", "127.0.0.1 is a loopback address"},
		{"nat64 private", "http://[64:ff9b::a00:1]/hook", "private (NAT64) address"},
	}
	g := webhook.NewGuard(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.CheckURL(context.Background(), tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckURL(%q) = %v, want an error saying %q", tc.url, err, tc.want)
			}
			if !errors.Is(err, events.ErrInvalid) || !errors.Is(err, webhook.ErrForbiddenAddress) {
				t.Fatalf("CheckURL(%q) = %v: want ErrInvalid (a 400) and ErrForbiddenAddress", tc.url, err)
			}
		})
	}
}

func TestCheckURLAcceptsPublicAddresses(t *testing.T) {
	g := webhook.NewGuard(nil)
	for _, u := range []string{"https://93.184.216.34/hook", "http://[2606:4700:4700::1111]:8443/x?token=1", "https://8.8.8.8"} {
		if err := g.CheckURL(context.Background(), u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
}

func TestAllowNets(t *testing.T) {
	allow, err := webhook.ParseNets(" 127.0.0.0/8, fd00::/8 ,")
	if err != nil {
		t.Fatal(err)
	}
	g := webhook.NewGuard(allow)
	for _, u := range []string{"http://127.0.0.1:9/h", "http://127.1.2.3/h", "http://[fd00::5]/h"} {
		if err := g.CheckURL(context.Background(), u); err != nil {
			t.Errorf("CheckURL(%q) = %v with the net allowed", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1/h", "http://[::1]/h", "http://169.254.169.254/"} {
		if err := g.CheckURL(context.Background(), u); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("CheckURL(%q) = %v, want it refused", u, err)
		}
	}
	for _, bad := range []string{"127.0.0.1", "10.0.0.0/33", "localhost/8"} {
		if _, err := webhook.ParseNets(bad); err == nil || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("ParseNets(%q) = %v, want a CIDR error", bad, err)
		}
	}
}

func TestCheckURLHostThatDoesNotResolve(t *testing.T) {
	err := webhook.NewGuard(nil).CheckURL(context.Background(), "https://no-such-host.invalid/hook")
	if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "does not resolve") {
		t.Fatalf("CheckURL = %v, want a 400 saying the host does not resolve", err)
	}
}

// TestControlRefusesAtDial: whatever passed at submit, the dial itself is
// checked on the address actually dialled, so a name that now resolves to an
// internal address (DNS rebinding) reaches nothing.
func TestControlRefusesAtDial(t *testing.T) {
	g := webhook.NewGuard(nil)
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "169.254.169.254:80", "10.1.2.3:8080", "[::ffff:192.168.0.1]:80"} {
		if err := g.Control("tcp", addr, nil); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("Control(%q) = %v, want it refused", addr, err)
		}
	}
	if err := g.Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("Control(public) = %v", err)
	}

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	client := g.Client(5 * time.Second)
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/hook"} {
		resp, err := client.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("POST %s = %v, want the dial refused", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	allowed := webhook.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5 * time.Second)
	resp, err := allowed.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST with 127.0.0.0/8 allowed: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("receiver got %d requests, want 1", hits.Load())
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := webhook.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5 * time.Second)
	resp, err := client.Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Fatalf("status %d, redirect target hit %d times; want the 307 returned and not followed", resp.StatusCode, hits.Load())
	}
}
