package events

import (
	"errors"
	"strings"
	"testing"
)

// TestListQueryLimit: an absent (or null) limit is the default, an explicit 0
// is refused like any limit outside 1..1000, and the other fields still decode.
func TestListQueryLimit(t *testing.T) {
	for _, tc := range []struct {
		body  string
		limit int    // after Validate
		want  string // error substring; "" when valid
	}{
		{`{}`, DefaultListLimit, ""},
		{`{"limit":null}`, DefaultListLimit, ""},
		{`{"status":"error","user_id":"u"}`, DefaultListLimit, ""},
		{`{"limit":1}`, 1, ""},
		{`{"limit":1000,"status":"completed"}`, 1000, ""},
		{`{"limit":0}`, 0, "limit 0 is outside 1..1000"},
		{`{"limit":0.0}`, 0, "limit"},
		{`{"limit":-1}`, 0, "limit -1 is outside 1..1000"},
		{`{"limit":1001}`, 0, "limit 1001 is outside 1..1000"},
		{`{"limit":"5"}`, 0, "not the expected JSON object"},
		{`{"limit":5,"extra":1}`, 0, `unknown field "extra"`},
	} {
		var q ListQuery
		err := DecodeControl([]byte(tc.body), &q)
		if err == nil {
			err = q.Validate()
		}
		if tc.want == "" {
			if err != nil || q.Limit != tc.limit {
				t.Errorf("%s: %v, limit %d; want limit %d", tc.body, err, q.Limit, tc.limit)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", tc.body, err, tc.want)
		}
	}
	var q ListQuery
	if err := DecodeControl([]byte(`{"status":"error","user_id":"u","limit":7}`), &q); err != nil || q.Status != StatusError || q.UserID != "u" || q.Limit != 7 {
		t.Fatalf("fields lost: %+v %v", q, err)
	}
}
