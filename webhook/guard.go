package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// resolveTimeout bounds the lookup of a webhook host when a request is checked.
const resolveTimeout = 5 * time.Second

// Guard decides which addresses webhooks may reach: any public unicast address,
// plus the internal ones its allow list names. A webhook is a request sheetd
// makes on a user's behalf, so without it a user could make sheetd call its own
// network (metadata services, admin ports).
type Guard struct {
	allow []netip.Prefix
	// lookup resolves a host name: net.DefaultResolver, or a test's stub.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NewGuard returns a Guard that refuses internal addresses except those in allow.
func NewGuard(allow []netip.Prefix) *Guard {
	return &Guard{allow: allow, lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
}

// ParseNets parses a comma-separated list of CIDR prefixes ("127.0.0.0/8, ::1/128");
// an empty list is valid.
func ParseNets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix like 127.0.0.0/8", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// CheckURL refuses, with events.ErrInvalid, a webhook URL whose host is or
// resolves to an address webhooks may not reach, or does not resolve at all.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w: webhook_url %q is not a URL with a host", events.ErrInvalid, raw)
	}
	host := u.Hostname()
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("%w: webhook_url host %q does not resolve: %s", events.ErrInvalid, host, lookupFailure(err))
	}
	for _, a := range addrs {
		if err := g.Allowed(a); err != nil {
			return fmt.Errorf("%w: webhook_url host %q: %w", events.ErrInvalid, host, err)
		}
	}
	return nil
}

func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := g.lookup(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = errNoAddresses
	}
	return addrs, err
}

var errNoAddresses = errors.New("no addresses")

// lookupFailure says why a lookup failed without the resolver's own text, which
// names the DNS server sheetd uses: a user learns nothing of sheetd's network.
func lookupFailure(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errNoAddresses):
		return "it has no addresses"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return "the lookup timed out"
	}
	return "the lookup failed"
}

// Allowed returns an error wrapping ErrForbiddenAddress, naming the kind of
// address, unless webhooks may reach a.
func (g *Guard) Allowed(a netip.Addr) error {
	a = a.WithZone("").Unmap()
	kind := internalKind(a)
	if kind == "" {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	article := "a"
	if strings.ContainsAny(kind[:1], "aeiou") {
		article = "an"
	}
	return fmt.Errorf("%w: %s is %s %s address", ErrForbiddenAddress, a, article, kind)
}

// Control is a net.Dialer Control hook: it refuses a connection to an address
// webhooks may not reach. It runs on the address actually dialled, so a name
// that resolved to a public address when the job was submitted and resolves to
// an internal one now (DNS rebinding) is refused too.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %q: %v", ErrForbiddenAddress, address, err)
	}
	return g.Allowed(ap.Addr())
}

// Client is an HTTP client for webhooks: every dial goes through Control, no
// proxy is used (the dial would check the proxy, not the target), redirects are
// returned instead of followed, and one request takes at most timeout.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: g.Control}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
