package webhook

import (
	"context"
	"net/netip"
)

// NewGuardWithLookup is NewGuard resolving names with lookup instead of the
// system's resolver.
func NewGuardWithLookup(allow []netip.Prefix, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) *Guard {
	g := NewGuard(allow)
	g.lookup = lookup
	return g
}
