package service

import (
	"maps"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
)

func TestFairnessSettings(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fifo, _ := cfg.fifo(); fifo || cfg.FairWindow != 1000 {
		t.Errorf("defaults: fifo %v window %d, want fair with window 1000", fifo, cfg.FairWindow)
	}
	if uc, _ := cfg.userConcurrency(); uc[events.StageDesign] != 0 {
		t.Errorf("default user concurrency %v, want no cap", uc)
	}

	cfg, err = parse(t, map[string]string{"SHEETPIPE_FAIRNESS": "off", "SHEETPIPE_FAIR_WINDOW": "50", "SHEETPIPE_USER_CONCURRENCY": "design=1, compile=2"})
	if err != nil {
		t.Fatal(err)
	}
	uc, _ := cfg.userConcurrency()
	if fifo, _ := cfg.fifo(); !fifo || cfg.FairWindow != 50 ||
		!maps.Equal(uc, map[events.Stage]int{events.StageDesign: 1, events.StageCompile: 2}) {
		t.Errorf("parsed fifo %v window %d user concurrency %v", fifo, cfg.FairWindow, uc)
	}
	cfg, _ = parse(t, map[string]string{"SHEETPIPE_USER_CONCURRENCY": "3"})
	if uc, _ := cfg.userConcurrency(); uc[events.StagePrompt] != 3 || uc[events.StageMeta] != 3 {
		t.Errorf("a number caps every stage: %v", uc)
	}

	for env, want := range map[string]map[string]string{
		`SHEETPIPE_FAIRNESS="maybe": want on or off`: {"SHEETPIPE_FAIRNESS": "maybe"},
		"SHEETPIPE_FAIR_WINDOW=-1":                   {"SHEETPIPE_FAIR_WINDOW": "-1"},
		`"design=many" is not a number`:              {"SHEETPIPE_USER_CONCURRENCY": "design=many"},
		`"print=1" is not a number`:                  {"SHEETPIPE_USER_CONCURRENCY": "print=1"},
		`"-1"`:                                       {"SHEETPIPE_USER_CONCURRENCY": "-1"},
		`"design=-2" is not a number or sta`:         {"SHEETPIPE_USER_CONCURRENCY": "design=-2"},
	} {
		if _, err := parse(t, want); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%v: error %v, want it to mention %s", want, err, env)
		}
	}
}
