package service

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestRetentionParses(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want time.Duration
	}{
		{"default", "", nil, 30 * 24 * time.Hour},
		{"days", "30d", nil, 30 * 24 * time.Hour},
		{"one day", "1d", nil, 24 * time.Hour},
		{"hours", "12h", nil, 12 * time.Hour},
		{"minutes", "90m", nil, 90 * time.Minute},
		{"zero disables", "0", nil, 0},
		{"zero days", "0d", nil, 0},
		{"flag wins", "30d", []string{"-retention", "7d"}, 7 * 24 * time.Hour},
		{"flag duration", "", []string{"-retention", "36h"}, 36 * time.Hour},
		{"flag zero", "", []string{"-retention", "0"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(t, map[string]string{"SHEETPIPE_RETENTION": tc.env}, tc.args...)
			if err != nil || cfg.Retention != tc.want {
				t.Fatalf("retention %s (err %v), want %s", cfg.Retention, err, tc.want)
			}
		})
	}
}

func TestRetentionRejectsBadValues(t *testing.T) {
	for _, v := range []string{"soon", "30x", "-1d", "-5m", "d", "1.5d", "30 days", "1h30d", "99999999d"} {
		t.Run("env "+v, func(t *testing.T) {
			_, err := parse(t, map[string]string{"SHEETPIPE_RETENTION": v})
			want := `$SHEETPIPE_RETENTION="` + v + `" is not a number of days (30d) or a duration (12h, 90m), 0 or more`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
		t.Run("flag "+v, func(t *testing.T) {
			_, err := parse(t, nil, "-retention", v)
			if err == nil || !strings.Contains(err.Error(), "-retention") || !strings.Contains(err.Error(), "whole number of days") {
				t.Fatalf("error %v, want it to name -retention and what it accepts", err)
			}
		})
	}
}

func TestHelpShowsRetentionDefault(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("sheetd", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	cfg.RegisterFlags(fs, func(string) string { return "" })
	fs.PrintDefaults()
	if !strings.Contains(out.String(), "$SHEETPIPE_RETENTION) (default 30d)") {
		t.Fatalf("-h does not show -retention with its default:\n%s", out.String())
	}
}
