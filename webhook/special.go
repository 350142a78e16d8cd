package webhook

import "net/netip"

// specialRange is an address range webhooks may not reach, with the kind of
// address a refusal names.
type specialRange struct {
	prefix netip.Prefix
	kind   string
}

func ranges(kind string, prefixes ...string) []specialRange {
	out := make([]specialRange, len(prefixes))
	for i, p := range prefixes {
		out[i] = specialRange{netip.MustParsePrefix(p), kind}
	}
	return out
}

// special holds every range of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (as of 2025), even those the registries call globally reachable
// (AS112, AMT, anycast services: no webhook receiver lives there), plus
// multicast, the deprecated site-local fec0::/10 and the former 6to4 relay
// anycast 192.88.99.0/24. The first range that contains an address names its
// kind, so the narrower ones come first. IPv4-mapped (::ffff:0:0/96) and
// IPv4-compatible (::/96) IPv6 addresses are not listed: they are judged by the
// IPv4 address they carry (internalKind). Any other IPv6 address outside global
// unicast 2000::/3 is refused too.
var special = concat(
	ranges("unspecified", "0.0.0.0/8", "::/128"),
	ranges("loopback", "127.0.0.0/8", "::1/128"),
	ranges("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10"),
	ranges("shared (CGNAT)", "100.64.0.0/10"),
	ranges("link-local", "169.254.0.0/16", "fe80::/10"),
	ranges("IETF protocol assignment", "192.0.0.0/24"),
	ranges("documentation", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
	ranges("AS112 DNS", "192.31.196.0/24", "192.175.48.0/24", "2620:4f:8000::/48"),
	ranges("AMT relay", "192.52.193.0/24"),
	ranges("6to4 relay anycast", "192.88.99.0/24"),
	ranges("benchmarking", "198.18.0.0/15", "2001:2::/48"),
	ranges("multicast", "224.0.0.0/4", "ff00::/8"),
	ranges("broadcast", "255.255.255.255/32"),
	ranges("reserved", "240.0.0.0/4"),
	ranges("NAT64 (IPv4/IPv6 translation)", "64:ff9b::/96", "64:ff9b:1::/48"),
	ranges("discard-only", "100::/64"),
	ranges("dummy IPv6", "100:0:0:1::/64"),
	ranges("Teredo", "2001::/32"),
	ranges("IETF protocol assignment", "2001::/23"),
	ranges("6to4", "2002::/16"),
	ranges("segment routing (SRv6 SID)", "5f00::/16"),
)

func concat(lists ...[]specialRange) []specialRange {
	var out []specialRange
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	compatibleV4    = netip.MustParsePrefix("::/96")
)

// internalKind names the kind of an address webhooks may not reach, or is empty
// for a public one. a has no zone and is not IPv4-mapped (Allowed unmaps it).
func internalKind(a netip.Addr) string {
	for _, r := range special {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	switch {
	case compatibleV4.Contains(a):
		// An IPv4-compatible address (deprecated, RFC 4291) carries an IPv4 address
		// in its last 32 bits; :: and ::1 were named above.
		b := a.As16()
		if kind := internalKind(netip.AddrFrom4([4]byte(b[12:]))); kind != "" {
			return kind + " (IPv4-compatible)"
		}
	case a.Is6() && !globalUnicastV6.Contains(a):
		return "reserved"
	}
	return ""
}
