package latex

import (
	"strings"
	"testing"
)

// requireEqual stops the test when got differs from want.
func requireEqual[T comparable](t *testing.T, got, want T, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %#v, want %#v", what, got, want)
	}
}

// requireContains stops the test when s lacks sub.
func requireContains(t *testing.T, s, sub, what string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s does not contain %q:\n%s", what, sub, s)
	}
}

// requireNotContains stops the test when s holds sub.
func requireNotContains(t *testing.T, s, sub, what string) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Fatalf("%s contains %q:\n%s", what, sub, s)
	}
}
