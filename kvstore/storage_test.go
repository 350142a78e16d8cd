package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

func TestStorageClassifies(t *testing.T) {
	api := func(code int, desc string) error {
		return &jetstream.APIError{Code: 500, ErrorCode: jetstream.ErrorCode(code), Description: desc}
	}
	for name, tc := range map[string]struct {
		err    error
		reason string // "" : not a storage error
	}{
		"account limit":       {api(10002, "resource limits exceeded for account"), "resource limits exceeded for account (JetStream error 10002)"},
		"server limit":        {api(10023, "insufficient resources"), "insufficient resources (JetStream error 10023)"},
		"reservation":         {api(10047, "insufficient storage resources available"), "insufficient storage resources available (JetStream error 10047)"},
		"disk in description": {api(10069, "write meta.inf.tmp: no space left on device"), "write meta.inf.tmp: no space left on device"},
		"wrapped":             {fmt.Errorf("create job x: %w", api(10023, "insufficient resources")), "insufficient resources (JetStream error 10023)"},
		"ENOSPC text":         {errors.New("write 1.blk: no space left on device"), "no space left on device"},
		"revision mismatch":   {api(10071, "wrong last sequence: 4"), ""},
		"message size":        {api(10054, "message size exceeds maximum allowed"), ""},
		"timeout":             {context.DeadlineExceeded, ""},
		"nil":                 {nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			se := kvstore.Storage(tc.err)
			switch {
			case tc.reason == "" && se != nil:
				t.Fatalf("Storage(%v) = %v, want nil", tc.err, se)
			case tc.reason == "":
				return
			case se == nil:
				t.Fatalf("Storage(%v) = nil, want a storage error", tc.err)
			case se.Error() != "storage full: "+tc.reason || !errors.Is(se, events.ErrStorage) || !errors.Is(se, tc.err):
				t.Fatalf("Storage(%v) = %q (is ErrStorage %v), want %q wrapping the cause", tc.err, se, errors.Is(se, events.ErrStorage), "storage full: "+tc.reason)
			}
		})
	}
}

// TestWriteRefusedForStorage fills a server whose JetStream storage is capped
// at 16 MiB: the write that no longer fits fails at once with ErrStorage (the
// server's "insufficient resources"), StorageErr reports it, and reads go on.
func TestWriteRefusedForStorage(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), JetStreamMaxStore: 16 << 20, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The PDF cache fits in what such a server can reserve.
	if err := broker.Provision(ctx, js, broker.Resources{}); err != nil {
		t.Fatal(err)
	}
	st, err := kvstore.New(ctx, js, metrics.New(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	first := &events.Job{ID: uuid.NewString(), UserID: "u", Status: events.StatusCompleted, Prompt: "p"}
	if _, err := st.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 800<<10)
	var refused error
	for i := 0; i < 40 && refused == nil; i++ {
		writeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, refused = st.Converse(writeCtx, uuid.NewString(), first.ID, func(c *events.Conversation) error {
			c.Messages = append(c.Messages, events.Message{Role: "user", Content: big})
			return nil
		})
		cancel()
	}
	if !errors.Is(refused, events.ErrStorage) || !strings.Contains(kvstore.Storage(refused).Error(), "storage full: insufficient resources") {
		t.Fatalf("writes past the storage limit: last error %v, want ErrStorage", refused)
	}
	if err := st.StorageErr(); !errors.Is(err, events.ErrStorage) {
		t.Fatalf("StorageErr after a refused write: %v", err)
	}
	if _, err := st.Create(ctx, &events.Job{ID: uuid.NewString(), UserID: "u", Status: events.StatusPending, Stage: events.StageDesign}); !errors.Is(err, events.ErrStorage) {
		t.Fatalf("Create past the storage limit: %v, want ErrStorage", err)
	}
	if _, _, err := st.Update(ctx, first.ID, func(j *events.Job) error { j.Prompt = big; return nil }); !errors.Is(err, events.ErrStorage) {
		t.Fatalf("Update past the storage limit: %v, want ErrStorage", err)
	}
	if j, _, err := st.Get(ctx, first.ID); err != nil || j.Prompt != "p" {
		t.Fatalf("Get past the storage limit: %v", err)
	}
}
