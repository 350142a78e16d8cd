package webhook_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/webhook"
)

// specialRanges is every range of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (read in 2025), plus multicast, site-local and the deprecated 6to4
// relay anycast, with the kind a refusal must name. It is written out here, not
// taken from the package, so that a range dropped from the guard's table fails.
var specialRanges = []struct{ prefix, kind string }{
	// IPv4 Special-Purpose Address Registry.
	{"0.0.0.0/8", "unspecified"},
	{"0.0.0.0/32", "unspecified"},
	{"10.0.0.0/8", "private"},
	{"100.64.0.0/10", "shared (CGNAT)"},
	{"127.0.0.0/8", "loopback"},
	{"169.254.0.0/16", "link-local"},
	{"172.16.0.0/12", "private"},
	{"192.0.0.0/24", "IETF protocol assignment"},
	{"192.0.0.0/29", "IETF protocol assignment"},   // DS-Lite
	{"192.0.0.8/32", "IETF protocol assignment"},   // IPv4 dummy address
	{"192.0.0.9/32", "IETF protocol assignment"},   // PCP anycast
	{"192.0.0.10/32", "IETF protocol assignment"},  // TURN anycast
	{"192.0.0.170/31", "IETF protocol assignment"}, // NAT64/DNS64 discovery
	{"192.0.2.0/24", "documentation"},
	{"192.31.196.0/24", "AS112 DNS"},
	{"192.52.193.0/24", "AMT relay"},
	{"192.88.99.0/24", "6to4 relay anycast"},
	{"192.168.0.0/16", "private"},
	{"192.175.48.0/24", "AS112 DNS"},
	{"198.18.0.0/15", "benchmarking"},
	{"198.51.100.0/24", "documentation"},
	{"203.0.113.0/24", "documentation"},
	{"224.0.0.0/4", "multicast"},
	{"240.0.0.0/4", "reserved"},
	{"255.255.255.255/32", "broadcast"},
	// IPv6 Special-Purpose Address Registry.
	{"::1/128", "loopback"},
	{"::/128", "unspecified"},
	{"64:ff9b::/96", "NAT64"},
	{"64:ff9b:1::/48", "NAT64"},
	{"100::/64", "discard-only"},
	{"100:0:0:1::/64", "dummy IPv6"},
	{"2001::/23", "IETF protocol assignment"},
	{"2001::/32", "Teredo"},
	{"2001:1::1/128", "IETF protocol assignment"}, // PCP anycast
	{"2001:1::2/128", "IETF protocol assignment"}, // TURN anycast
	{"2001:1::3/128", "IETF protocol assignment"}, // DNS-SD SRP anycast
	{"2001:2::/48", "benchmarking"},
	{"2001:3::/32", "IETF protocol assignment"},     // AMT
	{"2001:4:112::/48", "IETF protocol assignment"}, // AS112-v6
	{"2001:10::/28", "IETF protocol assignment"},    // ORCHID (deprecated)
	{"2001:20::/28", "IETF protocol assignment"},    // ORCHIDv2
	{"2001:30::/28", "IETF protocol assignment"},    // drone remote ID
	{"2001:db8::/32", "documentation"},
	{"2002::/16", "6to4"},
	{"2620:4f:8000::/48", "AS112 DNS"},
	{"3fff::/20", "documentation"},
	{"5f00::/16", "segment routing"},
	{"fc00::/7", "private"},
	{"fe80::/10", "link-local"},
	// Outside the registries but never a webhook receiver.
	{"fec0::/10", "private"}, // site-local, deprecated
	{"ff00::/8", "multicast"},
	{"4000::/3", "reserved"}, // IPv6 outside global unicast 2000::/3
	{"::2/127", "unspecified (IPv4-compatible)"},
}

// firstMiddleLast returns the first address of p, one in its middle (the first
// host bit set) and its last.
func firstMiddleLast(p netip.Prefix) []netip.Addr {
	first := p.Masked().Addr()
	b := first.AsSlice()
	bits := len(b) * 8
	if p.Bits() == bits {
		return []netip.Addr{first}
	}
	mid := append([]byte(nil), b...)
	mid[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	last := append([]byte(nil), b...)
	for i := p.Bits(); i < bits; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	m, _ := netip.AddrFromSlice(mid)
	l, _ := netip.AddrFromSlice(last)
	return []netip.Addr{first, m, l}
}

// hostOf writes a as a URL host.
func hostOf(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// kindOf is the kind of the narrowest range of specialRanges holding a.
func kindOf(a netip.Addr) string {
	bits, kind := -1, ""
	for _, r := range specialRanges {
		if p := netip.MustParsePrefix(r.prefix); p.Contains(a) && p.Bits() > bits {
			bits, kind = p.Bits(), r.kind
		}
	}
	return kind
}

// TestSpecialPurposeRangesRefused: the first, a middle and the last address of
// every special-purpose range is refused, named by the narrowest range holding
// it, as a literal URL host, at dial time, and spelled as an IPv4-mapped IPv6
// address when it is IPv4.
func TestSpecialPurposeRangesRefused(t *testing.T) {
	g := webhook.NewGuard(nil)
	for _, r := range specialRanges {
		for _, a := range firstMiddleLast(netip.MustParsePrefix(r.prefix)) {
			t.Run(r.prefix+"/"+a.String(), func(t *testing.T) {
				kind := kindOf(a)
				u := "https://" + hostOf(a) + "/hook"
				err := g.CheckURL(context.Background(), u)
				if !errors.Is(err, webhook.ErrForbiddenAddress) || !errors.Is(err, events.ErrInvalid) ||
					!strings.Contains(err.Error(), " is a "+kind) && !strings.Contains(err.Error(), " is an "+kind) {
					t.Fatalf("CheckURL(%q) = %v, want it refused as %s", u, err, kind)
				}
				if err := g.Control("tcp", netip.AddrPortFrom(a, 443).String(), nil); !errors.Is(err, webhook.ErrForbiddenAddress) {
					t.Fatalf("Control(%s) = %v, want the dial refused", a, err)
				}
				if a.Is4() {
					mapped := netip.AddrFrom16(a.As16())
					if err := g.Allowed(mapped); !errors.Is(err, webhook.ErrForbiddenAddress) || !strings.Contains(err.Error(), kind) {
						t.Fatalf("Allowed(%s) = %v, want it refused as %s", mapped, err, kind)
					}
				}
			})
		}
	}
}

// TestEmbeddedIPv4JudgedByItsIPv4: an IPv4-mapped or IPv4-compatible IPv6
// address is refused exactly when the IPv4 address it carries is.
func TestEmbeddedIPv4JudgedByItsIPv4(t *testing.T) {
	g := webhook.NewGuard(nil)
	for _, tc := range []struct {
		addr, want string // want "" when allowed
	}{
		{"::ffff:127.0.0.1", "127.0.0.1 is a loopback address"},
		{"::ffff:7f00:1", "127.0.0.1 is a loopback address"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:255.255.255.255", "broadcast"},
		{"::127.0.0.1", "::7f00:1 is a loopback (IPv4-compatible) address"},
		{"::10.0.0.1", "private (IPv4-compatible)"},
		{"::169.254.169.254", "link-local (IPv4-compatible)"},
		{"::192.0.2.1", "documentation (IPv4-compatible)"},
		{"::ffff:8.8.8.8", ""},
		{"::ffff:93.184.216.34", ""},
		{"::8.8.8.8", ""},
	} {
		err := g.Allowed(netip.MustParseAddr(tc.addr))
		if tc.want == "" {
			if err != nil {
				t.Errorf("Allowed(%s) = %v, want it allowed (its IPv4 address is public)", tc.addr, err)
			}
			continue
		}
		if !errors.Is(err, webhook.ErrForbiddenAddress) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Allowed(%s) = %v, want an error saying %q", tc.addr, err, tc.want)
		}
	}
}

// TestPublicAddressesAllowed: public addresses, including the neighbours just
// outside the special ranges, still pass.
func TestPublicAddressesAllowed(t *testing.T) {
	g := webhook.NewGuard(nil)
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "1.0.0.0", "9.255.255.255", "11.0.0.0",
		"100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255",
		"169.255.0.0", "172.15.255.255", "172.32.0.0", "191.255.255.255", "192.0.1.0",
		"192.0.3.0", "192.88.98.255", "192.167.255.255", "192.169.0.0", "198.17.255.255",
		"198.20.0.0", "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0",
		"223.255.255.255",
		"2606:4700:4700::1111", "2001:4860:4860::8888", "2001:200::1", "2001:db7:ffff::1",
		"2001:db9::1", "2003::1", "2620:4f:7fff::1", "2620:4f:8001::1", "3fff:1000::1",
		"2a00:1450:4001:80b::200e", "3ffe::1",
	} {
		a := netip.MustParseAddr(s)
		if err := g.Allowed(a); err != nil {
			t.Errorf("Allowed(%s) = %v, want it allowed", s, err)
		}
		if err := g.CheckURL(context.Background(), "https://"+hostOf(a)+":8443/hook"); err != nil {
			t.Errorf("CheckURL(%s) = %v, want it allowed", s, err)
		}
	}
}
