package events

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const someID = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"

// TestDecodeRefusesInvalidText: text that encoding/json would silently turn into
// U+FFFD (bytes that are not UTF-8, escapes of half a surrogate pair) makes the
// request invalid, naming the field, and keeps job_id and user_id for the error
// job; text that only looks odd is accepted unchanged.
func TestDecodeRefusesInvalidText(t *testing.T) {
	tests := []struct {
		name, data, want string // want "" when valid
	}{
		{"raw 0xff in prompt", `{"job_id":"` + someID + `","user_id":"alice","prompt":"a` + "\xff" + `b"}`, "prompt is not valid UTF-8"},
		{"0xff first", `{"prompt":"` + "\xff" + `","user_id":"alice","job_id":"` + someID + `"}`, "prompt is not valid UTF-8"},
		{"truncated sequence", `{"user_id":"alice","prompt":"caf` + "\xc3" + `"}`, "prompt is not valid UTF-8"},
		{"overlong slash", `{"user_id":"alice","prompt":"` + "\xc0\xaf" + `"}`, "prompt is not valid UTF-8"},
		{"surrogate as UTF-8", `{"user_id":"alice","prompt":"` + "\xed\xa0\x80" + `"}`, "prompt is not valid UTF-8"},
		{"beyond U+10FFFF", `{"user_id":"alice","prompt":"` + "\xf4\x90\x80\x80" + `"}`, "prompt is not valid UTF-8"},
		{"lone high surrogate", `{"user_id":"alice","prompt":"x\ud800y"}`, "prompt is not valid UTF-8"},
		{"lone low surrogate", `{"user_id":"alice","prompt":"x\udc00"}`, "prompt is not valid UTF-8"},
		{"high then letter", `{"user_id":"alice","prompt":"\ud83d\u0041"}`, "prompt is not valid UTF-8"},
		{"high at end", `{"user_id":"alice","prompt":"\uD83D"}`, "prompt is not valid UTF-8"},
		{"two highs", `{"user_id":"alice","prompt":"\ud83d\ud83d"}`, "prompt is not valid UTF-8"},
		{"upper-case key", `{"user_id":"alice","PROMPT":"` + "\xff" + `"}`, "PROMPT is not valid UTF-8"},
		{"user_id", `{"user_id":"` + "\xc3(" + `","prompt":"p"}`, "user_id is not valid UTF-8"},
		{"mode", `{"user_id":"alice","prompt":"p","mode":"auto` + "\xff" + `"}`, "mode is not valid UTF-8"},
		{"dependency", `{"user_id":"alice","prompt":"p","depends_on":["1b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10","` + "\xff" + `"]}`, "depends_on[1] is not valid UTF-8"},
		{"unknown field", `{"user_id":"alice","prompt":"p","note":"` + "\xff" + `"}`, "note is not valid UTF-8"},
		{"odd field name", `{"user_id":"alice","prompt":"p","a b":["` + "\xff" + `"]}`, `"a b"[0] is not valid UTF-8`},
		{"field name", `{"user_id":"alice","prompt":"p","` + "\xff" + `":1}`, "the request is not valid UTF-8"},
		{"shadowed duplicate", `{"user_id":"alice","prompt":"` + "\xff" + `","prompt":"fine"}`, "prompt is not valid UTF-8"},
		{"escaped backslash then u", `{"user_id":"alice","prompt":"\\ud800"}`, ""},
		{"surrogate pair", `{"user_id":"alice","prompt":"\ud83d\ude00 smile"}`, ""},
		{"literal U+FFFD", `{"user_id":"alice","prompt":"` + "\uFFFD" + `"}`, ""},
		{"escaped U+FFFD", `{"user_id":"alice","prompt":"\ufffd"}`, ""},
		{"four-byte UTF-8", `{"user_id":"alice","prompt":"` + "\U0010FFFF 😀" + `"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tc.data))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeRequest(%q) = %v, want it accepted", tc.data, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeRequest(%q) = %v, want ErrInvalid saying %q", tc.data, err, tc.want)
			}
			if req.UserID == "" {
				t.Fatalf("DecodeRequest(%q) lost the user_id: %+v", tc.data, req)
			}
			if strings.Contains(tc.data, someID) && req.JobID != someID {
				t.Fatalf("DecodeRequest(%q) lost the job_id: %+v", tc.data, req)
			}
		})
	}
}

// TestDecodeControlRefusesInvalidText: refine, latex and batch bodies go through
// DecodeControl, which refuses the same faults and names the field.
func TestDecodeControlRefusesInvalidText(t *testing.T) {
	var ref Refinement
	err := DecodeControl([]byte(`{"job_id":"`+someID+`","instruction":"harder `+"\xff"+`"}`), &ref)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "instruction is not valid UTF-8") {
		t.Fatalf("refine: %v, want instruction is not valid UTF-8", err)
	}
	var e LatexEdit
	err = DecodeControl([]byte(`{"job_id":"`+someID+`","latex":"\\documentclass{article}\udfff"}`), &e)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "latex is not valid UTF-8") {
		t.Fatalf("latex: %v, want latex is not valid UTF-8", err)
	}
	_, err = DecodeBatch([]byte(`{"jobs":[{"user_id":"u","prompt":"ok"},{"user_id":"u","prompt":"` + "\xff" + `"}]}`))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "jobs[1].prompt is not valid UTF-8") {
		t.Fatalf("batch: %v, want jobs[1].prompt is not valid UTF-8", err)
	}
	_, err = DecodeBatchLines([]byte("{\"user_id\":\"u\",\"prompt\":\"ok\"}\n{\"user_id\":\"u\",\"prompt\":\"\xff\"}\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 2: prompt is not valid UTF-8") {
		t.Fatalf("batch lines: %v, want line 2: prompt is not valid UTF-8", err)
	}
	if err := DecodeControl([]byte(`{"job_id":"`+someID+`","instruction":"\ud83d\ude00 \u00e9"}`), &ref); err != nil || ref.Instruction != "😀 é" {
		t.Fatalf("valid escapes: %v %q", err, ref.Instruction)
	}
}

// TestUserIDRefusesControlAndInvisibleCharacters: C0, DEL, C1, line and
// paragraph separators and invisible formatting characters (bidi controls,
// zero-width characters, BOM) are refused anywhere in a user_id, named by code
// point; visible letters, marks, symbols and spaces of any script are not.
func TestUserIDRefusesControlAndInvisibleCharacters(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"al\x00ice", "U+0000, a control character"},
		{"alice\n", "U+000A, a control character"},
		{"\talice", "U+0009, a control character"},
		{"al\x1bice", "U+001B, a control character"},
		{"alice\x7f", "U+007F, a control character"},
		{"alice\u0085", "U+0085, a control character"},
		{"alice\u009b31m", "U+009B, a control character"},
		{"alice\u2028", "U+2028, a line or paragraph separator"},
		{"alice\u2029", "U+2029, a line or paragraph separator"},
		{"admin\u202egpj.exe", "U+202E, an invisible formatting character"},
		{"\u202aalice", "U+202A, an invisible formatting character"},
		{"alice\u2066", "U+2066, an invisible formatting character"},
		{"alice\u2069", "U+2069, an invisible formatting character"},
		{"alice\u200e", "U+200E, an invisible formatting character"},
		{"alice\u200f", "U+200F, an invisible formatting character"},
		{"alice\u061c", "U+061C, an invisible formatting character"},
		{"al\u200bice", "U+200B, an invisible formatting character"},
		{"al\u200dice", "U+200D, an invisible formatting character"},
		{"\ufeffalice", "U+FEFF, an invisible formatting character"},
		{"al\u00adice", "U+00AD, an invisible formatting character"},
		{"alice\U000E0041", "U+E0041, an invisible formatting character"},
		{"alice", ""}, {"teacher-1@school.example", ""}, {"Zoë Ångström", ""}, {"先生", ""},
		{"مدرس", ""}, {"नमस्ते", ""}, {"a b", ""}, {"x\u00a0y", ""}, {"😀", ""},
	} {
		r := JobRequest{UserID: tc.id, Prompt: "p"}
		err := r.Validate(DefaultMaxRetries)
		if tc.want == "" {
			if err != nil {
				t.Errorf("user_id %q: %v, want it accepted", tc.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "user_id contains "+tc.want) {
			t.Errorf("user_id %q: %v, want it refused for %s", tc.id, err, tc.want)
		}
	}
	// Through the decoder, JSON escapes are the same characters.
	for esc, want := range map[string]string{`\u0000`: "U+0000", `\u001b`: "U+001B", `\u202E`: "U+202E", `\u2028`: "U+2028"} {
		r, err := DecodeRequest([]byte(`{"user_id":"alice` + esc + `","prompt":"p"}`))
		if err != nil {
			t.Fatalf("decode %s: %v", esc, err)
		}
		if err := r.Validate(DefaultMaxRetries); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Fatalf("user_id with %s: %v, want it refused naming %s", esc, err, want)
		}
	}
}

// TestExcerpt: a prompt cut for an invalid request's job keeps at most the bound
// in bytes, ends on a UTF-8 boundary and says how large the prompt was.
func TestExcerpt(t *testing.T) {
	if got := Excerpt("short", 1024); got != "short" {
		t.Fatalf("Excerpt of a short text = %q", got)
	}
	exact := strings.Repeat("a", 1024)
	if got := Excerpt(exact, 1024); got != exact {
		t.Fatalf("Excerpt of exactly the bound changed it")
	}
	for _, tc := range []struct {
		s      string
		prefix int // bytes of s kept
	}{
		{strings.Repeat("a", 1<<20), 1024},
		{"a" + strings.Repeat("é", 2000), 1023},   // 2-byte runes: the 1024th byte starts one
		{"aa" + strings.Repeat("€", 1000), 1022},  // 3-byte runes
		{"aaa" + strings.Repeat("😀", 1000), 1023}, // 4-byte runes: 3 + 255*4
		{strings.Repeat("\xff", 2000), 1024},      // not UTF-8 at all: cut anywhere
	} {
		got := Excerpt(tc.s, 1024)
		want := tc.s[:tc.prefix] + "… [cut: " + strconv.Itoa(len(tc.s)) + " bytes in all]"
		if got != want {
			t.Fatalf("Excerpt of %d bytes = %q…, want %d bytes kept and the size noted", len(tc.s), got[max(0, len(got)-40):], tc.prefix)
		}
		if utf8.ValidString(tc.s) && !utf8.ValidString(got) {
			t.Fatalf("Excerpt cut a rune: %q", got[len(got)-40:])
		}
	}
	if q := Quoted(strings.Repeat("m", 1<<20)); len(q) > 100 || !strings.Contains(q, "(1048576 bytes)") {
		t.Fatalf("Quoted of 1 MiB = %d bytes: %.100s", len(q), q)
	}
}

// TestDeepInvalidTextIsCheap: a bad byte under thousands of levels of nesting
// with a large string is refused, naming the outer levels, without decoding the
// whole request once per level.
func TestDeepInvalidTextIsCheap(t *testing.T) {
	const depth = 5000
	data := `{"user_id":"u","prompt":"p","x":` + strings.Repeat("[", depth) + `"` + strings.Repeat("a", 256<<10) + "\xff" + `"` + strings.Repeat("]", depth) + `}`
	_, err := DecodeRequest([]byte(data))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "x[0][0][0] is not valid UTF-8") {
		t.Fatalf("DecodeRequest = %v, want x[0][0][0] is not valid UTF-8", err)
	}
}
