package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testdisk"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestDiskGuard fills the embedded server's disk (a 64 MiB tmpfs) and lets a
// write hit it before the guard looks: that write gets no answer and leaves the
// stream with nats-server's sticky write error. Once the guard has looked,
// every write is refused at once as a storage error while reads go on; once the
// filler is deleted the guard restarts JetStream in place and the same bucket
// takes writes again, with no restart of the server.
func TestDiskGuard(t *testing.T) {
	dir := testdisk.Mount(t, "64m")
	emb, err := broker.StartEmbedded(dir, "127.0.0.1:-1", broker.WithDiskChecks(0),
		broker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "jobs", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "a", []byte("before")); err != nil {
		t.Fatal(err)
	}
	put := func(value string, within time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		_, err := kv.Put(ctx, "a", []byte(value))
		return err
	}

	filler := filepath.Join(dir, "filler")
	testdisk.Fill(t, filler)
	if err := put(strings.Repeat("x", 64<<10), 2*time.Second); err == nil {
		t.Fatal("a write onto a full disk succeeded")
	}

	emb.CheckDisk()
	if err := emb.StorageErr(); !errors.Is(err, events.ErrStorage) || !strings.Contains(err.Error(), "free in "+dir) {
		t.Fatalf("StorageErr on a full disk: %v, want a storage error naming the free space", err)
	}
	if err := put("during", 10*time.Second); !kvstore.IsStorage(err) {
		t.Fatalf("write on a full disk, guard limiting: %v, want a storage refusal", err)
	}
	if e, err := kv.Get(ctx, "a"); err != nil || string(e.Value()) != "before" {
		t.Fatalf("read on a full disk: %v, want the value written before", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	emb.CheckDisk()
	if err := emb.StorageErr(); err != nil {
		t.Fatalf("StorageErr with space back: %v", err)
	}
	if err := put("after", 10*time.Second); err != nil {
		t.Fatalf("write with space back: %v", err)
	}
	if e, err := kv.Get(ctx, "a"); err != nil || string(e.Value()) != "after" {
		t.Fatalf("read with space back: %v", err)
	}
}
