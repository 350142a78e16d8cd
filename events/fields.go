package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// checkFields refuses, with ErrInvalid, the first field of the JSON object data
// that the struct v points to has no field for, and a field given twice.
// encoding/json would ignore the first (or, matching names regardless of case,
// take "PROMPT" for prompt) and keep the last of the second: a request with
// "priorty" would silently run at normal priority. Names must match exactly;
// the refusal names the field, and the known one it is closest to:
// `unknown field "priorty" (did you mean "priority"?)`. It checks nothing when
// data is not a JSON object or v not a pointer to a struct: decoding reports that.
func checkFields(data []byte, v any) error {
	known := fieldNames(reflect.TypeOf(v))
	if known == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if open, err := dec.Token(); err != nil || open != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool, len(known))
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil
		}
		switch {
		case !known[name]:
			return fmt.Errorf("%w: unknown field %s%s", ErrInvalid, Quoted(name), suggest(name, known))
		case seen[name]:
			return fmt.Errorf("%w: field %q is given twice", ErrInvalid, name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// knownFields caches fieldNames by type.
var knownFields sync.Map // reflect.Type -> map[string]bool

// fieldNames is the set of JSON names of the fields of the struct t points to
// (embedded structs' fields included), nil when t is not a pointer to a struct.
func fieldNames(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	if names, ok := knownFields.Load(t); ok {
		return names.(map[string]bool)
	}
	names := map[string]bool{}
	addFieldNames(t.Elem(), names)
	knownFields.Store(t, names)
	return names
}

func addFieldNames(t reflect.Type, names map[string]bool) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			addFieldNames(f.Type, names)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
}

// suggest is ` (did you mean "priority"?)` when name is close to a known field:
// the same but for case, underscores and hyphens ("maxRetries"), at most two
// edits away ("priorty"; three for a name of 8 letters or more: "max_retry"),
// or the start of one ("prio"); "" when none is.
func suggest(name string, known map[string]bool) string {
	flat := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	limit := 2
	if len(flat(name)) >= 8 {
		limit = 3
	}
	best, bestDist := "", limit+1
	for k := range known {
		d := editDistance(flat(name), flat(k))
		if len(flat(name)) >= 4 && (strings.HasPrefix(flat(k), flat(name)) || strings.HasPrefix(flat(name), flat(k))) {
			d = min(d, 1)
		}
		if d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist > 0 && len(name) <= bestDist+1 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, counted in bytes;
// names longer than 64 bytes are never close to a field's.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
