package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxRejectedPromptBytes bounds the prompt an invalid request's job keeps: the
// job only shows what was refused, for the retention period.
const MaxRejectedPromptBytes = 1 << 10

// maxQuotedBytes bounds a value a refusal quotes.
const maxQuotedBytes = 64

// Excerpt returns s when it has at most n bytes; otherwise the longest prefix of
// s of at most n bytes that ends on a UTF-8 boundary, followed by a note of the
// full size: "… [cut: 1048576 bytes in all]".
func Excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… [cut: %d bytes in all]", s[:cut], len(s))
}

// Quoted returns s quoted as %q does, its first 64 bytes and a note of its size
// when it is longer: a refusal never repeats a huge value.
func Quoted(s string) string {
	if len(s) <= maxQuotedBytes {
		return strconv.Quote(s)
	}
	cut := maxQuotedBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// validText reports whether the JSON text b is valid UTF-8 and escapes no half of
// a UTF-16 surrogate pair. encoding/json decodes either kind of fault as U+FFFD
// without an error, so a request that fails here would silently say something
// other than what was sent. b must be valid JSON: a backslash is then always an
// escape inside a string.
func validText(b []byte) bool {
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '\\' && i+5 < len(b) && b[i+1] == 'u':
			r := hex4(b[i+2 : i+6])
			if !utf16.IsSurrogate(r) {
				i += 6
				continue
			}
			if r >= 0xdc00 || i+11 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return false
			}
			if low := hex4(b[i+8 : i+12]); low < 0xdc00 || low > 0xdfff {
				return false
			}
			i += 12
		case c == '\\':
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return true
}

// hex4 reads the 4 hex digits of a \u escape; -1 if they are not.
func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

// checkText refuses, with ErrInvalid, the JSON value data (valid JSON) when its
// text is not valid UTF-8 (validText), naming the first faulty field by its path
// ("prompt", "jobs[2].prompt").
func checkText(data []byte) error {
	if validText(data) {
		return nil
	}
	if path := badTextPath(data); path != "" {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, path)
	}
	return fmt.Errorf("%w: the request is not valid UTF-8 (a field name, or a field given twice)", ErrInvalid)
}

// plainName matches a field name a path shows as it is; any other is quoted.
var plainName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// maxPathDepth bounds how deep badTextPath looks: each level decodes its value
// again, so a deeply nested request costs at most this many passes.
const maxPathDepth = 4

// badTextPath is the path within the JSON value raw, in document order, of the
// first value whose text is not valid, followed no deeper than maxPathDepth
// levels; "" when raw is a string or the fault is in a field name.
func badTextPath(raw []byte) string {
	path := subPath(raw, maxPathDepth)
	if len(path) > 0 && path[0] == '.' {
		return path[1:]
	}
	return path
}

// subPath is badTextPath with a leading dot before a field name, depth levels deep.
func subPath(raw []byte, depth int) string {
	if depth == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	open, err := dec.Token()
	if err != nil || (open != json.Delim('{') && open != json.Delim('[')) {
		return ""
	}
	for i := 0; dec.More(); i++ {
		name := "[" + strconv.Itoa(i) + "]"
		if open == json.Delim('{') {
			key, err := dec.Token()
			k, ok := key.(string)
			if err != nil || !ok {
				return ""
			}
			if name = "." + k; !plainName.MatchString(k) {
				name = "." + Quoted(k)
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if !validText(v) {
			return name + subPath(v, depth-1)
		}
	}
	return ""
}

// userIDFault names the first rune of a user_id that it may not hold: a control
// character (C0, DEL, C1), a line or paragraph separator (U+2028, U+2029), or an
// invisible formatting character (Unicode category Cf: bidirectional overrides,
// embeddings, isolates and marks, zero-width spaces and joiners, the byte order
// mark, soft hyphen, tag characters). Each can make a user_id print as another,
// or break the logs and terminals it is shown in. It is "" for a valid user_id.
func userIDFault(id string) string {
	for _, r := range id {
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("%U, a control character", r)
		case r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("%U, a line or paragraph separator", r)
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("%U, an invisible formatting character", r)
		}
	}
	return ""
}
