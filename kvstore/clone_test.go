package kvstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// Clone must copy every field and share no memory a write could reach: a field
// added later with a pointer, slice or map fails here until Clone copies it.
func TestCloneIsDeep(t *testing.T) {
	j := &events.Job{ID: "j", ErrorLog: &events.ErrorLog{Log: "l"}, Lease: &events.Lease{Owner: "o", ExpiresAt: time.Now()},
		Tags: []string{"a"}, DependsOn: []string{"d"}}
	fillAll(reflect.ValueOf(j).Elem())
	c := j.Clone()
	if !reflect.DeepEqual(j, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", j, c)
	}
	checkNoSharing(t, "Job", reflect.ValueOf(j).Elem(), reflect.ValueOf(c).Elem())

	conv := &events.Conversation{ID: "c", Messages: []events.Message{{Role: "user", Content: "hi"}}}
	cc := conv.Clone()
	if !reflect.DeepEqual(conv, cc) {
		t.Fatalf("conversation clone differs")
	}
	checkNoSharing(t, "Conversation", reflect.ValueOf(conv).Elem(), reflect.ValueOf(cc).Elem())
}

// fillAll gives every nil pointer and empty slice of v a value, so the check
// below sees each one.
func fillAll(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			}
		case reflect.Slice:
			if f.Len() == 0 {
				f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			}
		case reflect.Map:
			if f.IsNil() {
				f.Set(reflect.MakeMap(f.Type()))
			}
		}
	}
}

func checkNoSharing(t *testing.T, name string, a, b reflect.Value) {
	t.Helper()
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		switch fa.Kind() {
		case reflect.Pointer, reflect.Map:
			if !fa.IsNil() && fa.Pointer() == fb.Pointer() {
				t.Errorf("%s.%s is shared by the clone", name, a.Type().Field(i).Name)
			}
		case reflect.Slice:
			if fa.Len() > 0 && fa.Pointer() == fb.Pointer() {
				t.Errorf("%s.%s is shared by the clone", name, a.Type().Field(i).Name)
			}
		}
	}
}
