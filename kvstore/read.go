package kvstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsNoMessageFound is JetStream's error code for a missing message.
const jsNoMessageFound = 10037

// leaderReader reads a bucket's keys from the stream leader. nats.go's kv.Get
// uses direct gets, which any replica may answer; on a replicated bucket a
// follower can return a revision older than a write this process has already
// seen acknowledged. A CAS write catches that, but an update function that
// refuses to write (a stale ticket, a lost lease) would act on the old value.
// The leader has every acknowledged write.
type leaderReader struct {
	nc      *nats.Conn
	subject string // $JS.API.STREAM.MSG.GET.KV_<bucket>
	prefix  string // $KV.<bucket>.
}

func newLeaderReader(js jetstream.JetStream, bucket string) leaderReader {
	return leaderReader{
		nc:      js.Conn(),
		subject: "$JS.API.STREAM.MSG.GET.KV_" + bucket,
		prefix:  "$KV." + bucket + ".",
	}
}

type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs"`
		Data     []byte `json:"data"`
	} `json:"message"`
}

// get returns the key's latest value and revision; a missing, deleted or
// purged key is ErrNotFound.
func (r leaderReader) get(ctx context.Context, key string) ([]byte, uint64, error) {
	if !validKey(key) {
		return nil, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	req, err := json.Marshal(map[string]string{"last_by_subj": r.prefix + key})
	if err != nil {
		return nil, 0, err
	}
	reply, err := r.nc.RequestWithContext(ctx, r.subject, req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("get %s: decode reply: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == jsNoMessageFound:
		return nil, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("get %s: jetstream error %d: %s", key, resp.Error.ErrCode, resp.Error.Description)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("get %s: empty reply", key)
	}
	if len(resp.Message.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: decode headers: %w", key, err)
		}
		if op := hdr.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return nil, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
	}
	return resp.Message.Data, resp.Message.Sequence, nil
}

// validKey mirrors the KV key rules: letters, digits and -/_=. with no empty
// token.
func validKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '/' || c == '_' || c == '=' || c == '.'
		if !ok || (c == '.' && i > 0 && key[i-1] == '.') {
			return false
		}
	}
	return true
}
