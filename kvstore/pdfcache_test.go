package kvstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// The PDF cache returns what was put under a key, a miss as ErrNotFound, and
// refuses a key no KV key can be (a subject wildcard, a token separator at an
// end) rather than reading or writing another key.
func TestPDFCache(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := kvstore.OpenPDFCache(ctx, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	key := "0a1b2c3d4e5f"
	if _, err := c.Get(ctx, key); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("Get before a Put: %v, want ErrNotFound", err)
	}
	pdf := []byte("%PDF-1.5 fractions")
	if err := c.Put(ctx, key, pdf); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, key); err != nil || !bytes.Equal(got, pdf) {
		t.Fatalf("Get after a Put: %q err %v", got, err)
	}
	for _, bad := range []string{"", "*", ">", "a.>", ".a", "a b"} {
		if err := c.Put(ctx, bad, pdf); err == nil {
			t.Errorf("Put under %q was accepted", bad)
		}
		if _, err := c.Get(ctx, bad); !errors.Is(err, kvstore.ErrNotFound) {
			t.Errorf("Get of %q: %v, want ErrNotFound", bad, err)
		}
	}
}
