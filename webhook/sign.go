package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers of a webhook POST.
const (
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>".
	SignatureHeader = "X-Sheetpipe-Signature"
	// IdempotencyHeader carries "<job_id>:<revision>", the same on every attempt
	// to deliver one event.
	IdempotencyHeader = "Idempotency-Key"
	// UserAgent identifies sheetpipe's webhook requests.
	UserAgent = "sheetpipe-webhook"
)

const signaturePrefix = "sha256="

// Sign is the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

// Verify reports whether header (the SignatureHeader value a receiver got) signs
// body under secret. It compares in constant time; an empty secret verifies
// nothing. Receivers verify the raw body, before decoding it.
func Verify(secret string, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || secret == "" {
		return false
	}
	sum, err := hex.DecodeString(hexSum)
	return err == nil && hmac.Equal(sum, mac(secret, body))
}

func mac(secret string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return h.Sum(nil)
}
