package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestSecondSheetdRefusesAtOnce: while one sheetd runs, a second one on its data
// dir, its HTTP address or its NATS address returns an error naming what is taken
// (the holder's pid for the data dir) well before the embedded server's 15s start
// timeout, and the first keeps serving.
func TestSecondSheetdRefusesAtOnce(t *testing.T) {
	first := baseConfig(t)
	runService(t, first)
	waitStatus(t, "http://"+first.HTTPAddr+"/readyz", http.StatusOK, "", 60*time.Second)

	tests := []struct {
		name   string
		modify func(c *service.Config)
		want   []string
		is     error
	}{
		{"same data dir", func(c *service.Config) { c.DataDir = first.DataDir },
			[]string{first.DataDir, fmt.Sprintf("pid %d", os.Getpid()), "SHEETPIPE_DATA_DIR"}, service.ErrDataDirInUse},
		{"same http address", func(c *service.Config) { c.HTTPAddr = first.HTTPAddr },
			[]string{"http listen " + first.HTTPAddr, "SHEETPIPE_HTTP_ADDR"}, nil},
		{"same nats address", func(c *service.Config) { c.NATSListen = first.NATSListen },
			[]string{"nats listen " + first.NATSListen, "SHEETPIPE_NATS_LISTEN"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.NATSListen, cfg.HTTPAddr = testnats.FreeAddr(t), testnats.FreeAddr(t)
			tc.modify(&cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- service.Run(ctx, cfg) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cancel()
				<-done
				t.Fatal("the second sheetd was still starting after 10s")
			}
			if err == nil {
				t.Fatal("the second sheetd ran")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	waitStatus(t, "http://"+first.HTTPAddr+"/readyz", http.StatusOK, "", 10*time.Second)
}
