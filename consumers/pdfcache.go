package consumers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// pdfCacheVersion is part of every cache key: change it when the compiler's
// settings change what a source compiles to.
const pdfCacheVersion = "pdflatex-1\n"

// pdfCache keeps the PDF of every source that compiled, by content hash, so the
// same LaTeX (a resubmitted prompt, a retry or refine that changed nothing, a
// batch of identical requests) is compiled once. Within one process concurrent
// compiles of one source wait for the first; across processes the pdf_cache
// bucket (kvstore.PDFCache) is the meeting point. A failure to read or write the
// cache only costs a compile.
type pdfCache struct {
	kv  *kvstore.PDFCache // nil: caching off
	log *slog.Logger

	mu       sync.Mutex
	inflight map[string]chan struct{}
}

func cacheKey(source string) string {
	sum := sha256.Sum256([]byte(pdfCacheVersion + source))
	return hex.EncodeToString(sum[:])
}

// compile returns the cached PDF of source, or compiles it with fn and caches
// the result. cached reports whether fn was skipped.
func (c *pdfCache) compile(ctx context.Context, source string, fn func() ([]byte, error)) (pdf []byte, cached bool, err error) {
	if c == nil || c.kv == nil {
		pdf, err = fn()
		return pdf, false, err
	}
	key := cacheKey(source)
	for {
		if pdf, ok := c.get(ctx, key); ok {
			return pdf, true, nil
		}
		wait, done := c.lead(key)
		if wait != nil {
			select {
			case <-wait: // the leader finished: look again
				continue
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		defer done()
		pdf, err = fn()
		if err == nil {
			c.put(ctx, key, pdf)
		}
		return pdf, false, err
	}
}

// lead makes this caller the one compiling key, or returns a channel closed when
// the caller that is compiling it is done.
func (c *pdfCache) lead(key string) (wait <-chan struct{}, done func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.inflight[key]; ok {
		return ch, nil
	}
	if c.inflight == nil {
		c.inflight = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	c.inflight[key] = ch
	return nil, func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(ch)
	}
}

func (c *pdfCache) get(ctx context.Context, key string) ([]byte, bool) {
	pdf, err := c.kv.Get(ctx, key)
	switch {
	case err == nil:
		return pdf, true
	case !errors.Is(err, kvstore.ErrNotFound) && ctx.Err() == nil:
		c.log.WarnContext(ctx, "read pdf cache", "key", key, "error", err)
	}
	return nil, false
}

func (c *pdfCache) put(ctx context.Context, key string, pdf []byte) {
	if len(pdf) > broker.PDFCacheMaxValue {
		return
	}
	if err := c.kv.Put(ctx, key, pdf); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "write pdf cache", "key", key, "error", err)
	}
}
