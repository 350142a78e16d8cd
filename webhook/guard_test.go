package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
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
		{"nat64 private", "http://[64:ff9b::a00:1]/hook", "NAT64 (IPv4/IPv6 translation) address"},
		{"nat64 public", "http://[64:ff9b::808:808]/hook", "NAT64 (IPv4/IPv6 translation) address"},
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
	for _, ns := range nameservers(t) {
		if strings.Contains(err.Error(), ns) {
			t.Fatalf("CheckURL = %v: the refusal names sheetd's DNS server %s", err, ns)
		}
	}
}

// nameservers lists the DNS servers of /etc/resolv.conf.
func nameservers(t *testing.T) []string {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skipf("no /etc/resolv.conf: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// TestRefusalNamesNoResolver: however the lookup fails, the refusal quotes the
// host the user gave and says why in its own words, never the resolver's error
// text, which names the DNS server sheetd uses.
func TestRefusalNamesNoResolver(t *testing.T) {
	const server = "10.9.8.7:53"
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not found", &net.DNSError{Err: "no such host", Name: "hooks.example", Server: server, IsNotFound: true}, "does not resolve: no such host"},
		{"timeout", &net.DNSError{Err: "i/o timeout", Name: "hooks.example", Server: server, IsTimeout: true}, "does not resolve: the lookup timed out"},
		{"deadline", fmt.Errorf("lookup hooks.example on %s: %w", server, context.DeadlineExceeded), "does not resolve: the lookup timed out"},
		{"server failure", &net.DNSError{Err: "server misbehaving", Name: "hooks.example", Server: server}, "does not resolve: the lookup failed"},
		{"unreachable", &net.OpError{Op: "dial", Net: "udp", Addr: &net.UDPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 53}, Err: errors.New("network is unreachable")}, "does not resolve: the lookup failed"},
		{"no addresses", nil, "does not resolve: it has no addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := webhook.NewGuardWithLookup(nil, func(context.Context, string) ([]netip.Addr, error) { return nil, tc.err })
			err := g.CheckURL(context.Background(), "https://hooks.example/x")
			if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), `host "hooks.example" `+tc.want) {
				t.Fatalf("CheckURL = %v, want a 400 saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "10.9.8.7") || strings.Contains(err.Error(), ":53") {
				t.Fatalf("CheckURL = %v: the refusal names the resolver", err)
			}
		})
	}
}

// loopbackSpellings are ways to write a loopback (or other internal) host that
// are not its plain dotted quad: IPv4-mapped and IPv4-compatible IPv6, NAT64,
// 6to4 and Teredo addresses carrying 127.0.0.1, and the decimal, octal, hex and
// short IPv4 forms inet_aton accepts.
var loopbackSpellings = []string{
	"[::127.0.0.1]", "[::7f00:1]", "[::ffff:7f00:1]", "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:127.0.0.1]",
	"[::ffff:127.0.0.1%25lo]", "[::1%25lo]", "[64:ff9b::127.0.0.1]", "[64:ff9b:1::7f00:1]",
	"[2002:7f00:1::1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
	"2130706433", "0x7f.1", "0x7f000001", "017700000001", "0177.0.0.1", "0177.1", "127.1", "127.0.1",
	"0x7f.0x0.0x0.0x1", "127.0.0.1.", "0", "0.0.0.0", "localhost", "LOCALHOST", "localhost.",
}

// inetAton is the IPv4 address C's inet_aton reads in s (decimal, octal and hex
// parts, one to four of them), as a resolver built on it (glibc's getaddrinfo,
// sheetd built with cgo) answers for such a name.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := vals[len(vals)-1]
	for i, v := range vals[:len(vals)-1] {
		n |= v << (24 - 8*i)
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// TestNoSpellingReachesLoopback: every other spelling of a loopback host is
// refused on submit, both by the system's resolver and by one that reads
// inet_aton's forms as addresses, and no POST to one reaches a loopback receiver.
func TestNoSpellingReachesLoopback(t *testing.T) {
	real := webhook.NewGuard(nil)
	aton := webhook.NewGuardWithLookup(nil, func(_ context.Context, host string) ([]netip.Addr, error) {
		if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, nil
		}
		if a, ok := inetAton(host); ok {
			return []netip.Addr{a}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	client := real.Client(5 * time.Second)
	for _, host := range loopbackSpellings {
		u := "http://" + host + ":" + port + "/hook"
		if err := real.CheckURL(context.Background(), u); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("CheckURL(%q) = %v, want it refused", u, err)
		}
		if err := aton.CheckURL(context.Background(), u); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("CheckURL(%q) with an inet_aton resolver = %v, want the address refused", u, err)
		}
		resp, err := client.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		var dnsErr *net.DNSError
		if !errors.Is(err, webhook.ErrForbiddenAddress) && !errors.As(err, &dnsErr) {
			t.Errorf("POST %s = %v, want the dial refused or the name unresolved", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
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
