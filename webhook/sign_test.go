package webhook_test

import (
	"fmt"
	"testing"

	"github.com/sheetpipe/sheetpipe/webhook"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"job_id":"j","status":"completed"}`)
	good := webhook.Sign("s3cret", body)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", "s3cret", body, good, true},
		{"surrounding spaces", "s3cret", body, " " + good + " ", true},
		{"other secret", "other", body, good, false},
		{"tampered body", "s3cret", []byte(`{"job_id":"j","status":"aborted"}`), good, false},
		{"no prefix", "s3cret", body, good[len("sha256="):], false},
		{"not hex", "s3cret", body, "sha256=zz", false},
		{"truncated", "s3cret", body, good[:len(good)-2], false},
		{"empty header", "s3cret", body, "", false},
		{"empty secret", "", body, webhook.Sign("", body), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := webhook.Verify(tc.secret, tc.body, tc.header); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

// A receiver checks the signature of the raw body before it decodes it, and
// deduplicates on the Idempotency-Key header.
func ExampleVerify() {
	secret := "the value of SHEETPIPE_WEBHOOK_SECRET"
	body := []byte(`{"job_id":"0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10","status":"completed","revision":9}`)
	header := webhook.Sign(secret, body) // what X-Sheetpipe-Signature carries
	fmt.Println(webhook.Verify(secret, body, header))
	fmt.Println(webhook.Verify("a wrong secret", body, header))
	// Output:
	// true
	// false
}
