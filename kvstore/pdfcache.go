package kvstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketPDFCache holds the PDF of LaTeX that compiled, keyed by the caller's
// hash of the source (the broker package provisions it: size, age and largest
// value). The cache policy (what is cached, what a miss or a failure costs) is
// the caller's; PDFCache only reads and writes.
const BucketPDFCache = "pdf_cache"

// PDFCache reads and writes the pdf_cache bucket.
type PDFCache struct {
	kv jetstream.KeyValue
}

// OpenPDFCache binds the existing pdf_cache bucket.
func OpenPDFCache(ctx context.Context, js jetstream.JetStream) (*PDFCache, error) {
	kv, err := js.KeyValue(ctx, BucketPDFCache)
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", BucketPDFCache, err)
	}
	return &PDFCache{kv: kv}, nil
}

// Get returns the PDF cached under key; ErrNotFound when there is none.
func (c *PDFCache) Get(ctx context.Context, key string) ([]byte, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("get cached pdf %s: %w", key, ErrNotFound)
	}
	e, err := c.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, fmt.Errorf("get cached pdf %s: %w", key, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("get cached pdf %s: %w", key, err)
	}
	return e.Value(), nil
}

// Put caches pdf under key, replacing what the key held. A write the server
// refuses for want of storage is ErrStorage.
func (c *PDFCache) Put(ctx context.Context, key string, pdf []byte) error {
	if !validKey(key) {
		return fmt.Errorf("cache pdf %s: invalid key", key)
	}
	if _, err := c.kv.Put(ctx, key, pdf); err != nil {
		return fmt.Errorf("cache pdf %s: %w", key, Classify(err))
	}
	return nil
}
