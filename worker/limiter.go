package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVLimiter is a Limiter on a KV bucket shared by every process: the places of
// key are the keys <Prefix>.<hash of key>.<i> for i below N, each holding its
// holder's id and the expiry of its lease. A place is taken by creating its key,
// or by replacing (compare-and-set on the revision) a value whose lease
// expired; renewed by a compare-and-set that moves the expiry; released by a
// delete at the holder's revision. A holder that dies stops renewing, and its
// place is free once its lease expired (TTL after its last renewal): the
// expiry is judged by the taker's clock, so the clocks of the processes must
// agree to well within TTL.
type KVLimiter struct {
	KV     jetstream.KeyValue
	Prefix string // e.g. the stage
	N      int    // places per key
	TTL    time.Duration
}

// limiterValue is the value of one taken place.
type limiterValue struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// placeKey is the KV key of place i of key: the key is hashed, so any user id
// makes a valid KV key.
func (l *KVLimiter) placeKey(key string, i int) string {
	h := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s.%s.%d", l.Prefix, hex.EncodeToString(h[:16]), i)
}

func (l *KVLimiter) value(owner string) []byte {
	b, _ := json.Marshal(limiterValue{Owner: owner, Expires: time.Now().Add(l.TTL)})
	return b
}

// Take implements Limiter.
func (l *KVLimiter) Take(ctx context.Context, key, owner string) (Lease, error) {
	for i := range l.N {
		k := l.placeKey(key, i)
		rev, err := l.KV.Create(ctx, k, l.value(owner))
		if err == nil {
			return &kvLease{l: l, key: k, owner: owner, rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take %s: %w", k, err)
		}
		e, err := l.KV.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: the next Take finds it free
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		var v limiterValue
		if json.Unmarshal(e.Value(), &v) == nil && time.Now().Before(v.Expires) {
			continue // a live holder
		}
		rev, err = l.KV.Update(ctx, k, l.value(owner), e.Revision())
		if err == nil {
			return &kvLease{l: l, key: k, owner: owner, rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take over %s: %w", k, err)
		}
	}
	return nil, nil
}

// kvLease is one place a KVLimiter gave.
type kvLease struct {
	l     *KVLimiter
	key   string
	owner string
	mu    sync.Mutex // guards rev: the heartbeat renews while the runner may release
	rev   uint64
}

// Renew implements Lease: it fails when the place was taken over (its lease had
// expired), and the holder then no longer counts against the key.
func (x *kvLease) Renew(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	rev, err := x.l.KV.Update(ctx, x.key, x.l.value(x.owner), x.rev)
	if err != nil {
		return fmt.Errorf("renew %s: %w", x.key, err)
	}
	x.rev = rev
	return nil
}

// Release implements Lease; a place taken over meanwhile is left to its new
// holder.
func (x *kvLease) Release(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	err := x.l.KV.Delete(ctx, x.key, jetstream.LastRevision(x.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release %s: %w", x.key, err)
	}
	return nil
}
