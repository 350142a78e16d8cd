package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// fieldKey is a field name with its spelling removed: lower case without
// underscores, so "UserID", "userId" and "user_id" are all "userid".
func fieldKey(name string) string { return strings.ToLower(strings.ReplaceAll(name, "_", "")) }

// object is one JSON object of the old store, its fields by fieldKey.
type object struct {
	fields map[string]json.RawMessage
	names  map[string]string // fieldKey -> the name as written
	extra  map[string]json.RawMessage
}

// decodeObject splits a JSON object into the fields of known (by fieldKey) and
// the others. A field given twice under two spellings is an error.
func decodeObject(data json.RawMessage, known map[string]bool) (*object, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if raw == nil {
		return nil, fmt.Errorf("not a JSON object: null")
	}
	o := &object{fields: map[string]json.RawMessage{}, names: map[string]string{}}
	for name, v := range raw {
		k := fieldKey(name)
		if !known[k] {
			if o.extra == nil {
				o.extra = map[string]json.RawMessage{}
			}
			o.extra[name] = v
			continue
		}
		if prev, dup := o.names[k]; dup {
			a, b := min(prev, name), max(prev, name)
			return nil, fmt.Errorf("field %s is given twice (%q and %q)", k, a, b)
		}
		o.fields[k], o.names[k] = v, name
	}
	return o, nil
}

// get decodes field k into v; a missing or null field leaves v as it is.
func (o *object) get(k string, v any) error {
	data, ok := o.fields[k]
	if !ok || string(data) == "null" {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("field %q: %s", o.names[k], typeError(err))
	}
	return nil
}

// typeError shortens a decoding error to what the value should have been.
func typeError(err error) string {
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("want a %s, not a JSON %s", te.Type, te.Value)
	case errors.As(err, &pe):
		return "want an RFC 3339 time like 2024-05-01T10:00:00Z"
	}
	return err.Error()
}

var (
	jobFields = keys("ID", "UserID", "Status", "CurrentStep", "Prompt", "Design", "Latex", "PDFURL",
		"ErrorMessage", "ErrorLog", "ConversationID", "RetryCount", "MaxRetries", "CreatedAt", "UpdatedAt")
	errorLogFields     = keys("Log", "Snippet", "Line")
	conversationFields = keys("ID", "JobID", "Messages", "CreatedAt", "UpdatedAt")
	messageFields      = keys("Role", "Content", "Timestamp", "Time")
)

func keys(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[fieldKey(n)] = true
	}
	return m
}

// decodeJob reads an old job in any of the three spellings.
func decodeJob(data json.RawMessage) (events.OldJob, error) {
	var j events.OldJob
	o, err := decodeObject(data, jobFields)
	if err != nil {
		return j, err
	}
	var status, step string
	var errs []error
	for k, v := range map[string]any{
		"id": &j.ID, "userid": &j.UserID, "status": &status, "currentstep": &step, "prompt": &j.Prompt,
		"design": &j.Design, "latex": &j.Latex, "pdfurl": &j.PDFURL, "errormessage": &j.ErrorMessage,
		"conversationid": &j.ConversationID, "retrycount": &j.RetryCount, "maxretries": &j.MaxRetries,
		"createdat": &j.CreatedAt, "updatedat": &j.UpdatedAt,
	} {
		errs = append(errs, o.get(k, v))
	}
	if err := firstError(errs); err != nil {
		return j, err
	}
	j.Status, j.CurrentStep, j.Extra = events.Status(status), events.Step(step), o.extra
	if data, ok := o.fields["errorlog"]; ok && string(data) != "null" {
		el, extra, err := decodeErrorLog(data)
		if err != nil {
			return j, fmt.Errorf("field %q: %v", o.names["errorlog"], err)
		}
		j.ErrorLog = el
		for k, v := range extra {
			if j.Extra == nil {
				j.Extra = map[string]json.RawMessage{}
			}
			j.Extra[o.names["errorlog"]+"."+k] = v
		}
	}
	return j, nil
}

func decodeErrorLog(data json.RawMessage) (*events.OldErrorLog, map[string]json.RawMessage, error) {
	o, err := decodeObject(data, errorLogFields)
	if err != nil {
		return nil, nil, err
	}
	var el events.OldErrorLog
	err = firstError([]error{o.get("log", &el.Log), o.get("snippet", &el.Snippet), o.get("line", &el.Line)})
	return &el, o.extra, err
}

// decodeConversation reads an old conversation in any of the three spellings.
func decodeConversation(data json.RawMessage) (events.OldConversation, error) {
	var c events.OldConversation
	o, err := decodeObject(data, conversationFields)
	if err != nil {
		return c, err
	}
	var msgs []json.RawMessage
	err = firstError([]error{o.get("id", &c.ID), o.get("jobid", &c.JobID), o.get("messages", &msgs),
		o.get("createdat", &c.CreatedAt), o.get("updatedat", &c.UpdatedAt)})
	if err != nil {
		return c, err
	}
	c.Extra = o.extra
	c.Messages = make([]events.OldMessage, len(msgs))
	for i, data := range msgs {
		m, err := decodeMessage(data)
		if err != nil {
			return c, fmt.Errorf("message %d: %v", i, err)
		}
		c.Messages[i] = m
	}
	return c, nil
}

func decodeMessage(data json.RawMessage) (events.OldMessage, error) {
	var m events.OldMessage
	o, err := decodeObject(data, messageFields)
	if err != nil {
		return m, err
	}
	if _, ok := o.fields["time"]; ok {
		if _, both := o.fields["timestamp"]; both {
			return m, fmt.Errorf("both %q and %q are given", o.names["timestamp"], o.names["time"])
		}
		o.fields["timestamp"], o.names["timestamp"] = o.fields["time"], o.names["time"]
	}
	err = firstError([]error{o.get("role", &m.Role), o.get("content", &m.Content), o.get("timestamp", &m.Timestamp)})
	m.Extra = o.extra
	return m, err
}

func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		// The smallest message, so that the same record always reports the same
		// error whatever the order its fields were read in.
		if err != nil && (first == nil || err.Error() < first.Error()) {
			first = err
		}
	}
	return first
}
