package main

import (
	"bytes"
	"strings"
)

// Groups of the message breakdown.
const (
	groupPull      = "pull request ($JS.API.CONSUMER.MSG.NEXT)"
	groupDirectGet = "direct get (KV or object store read)"
	groupMsgGet    = "KV read (stream msg get, no direct get)"
	groupAPI       = "other JetStream API request"
	groupAck       = "consumer acknowledgement ($JS.ACK)"
	groupFlow      = "flow control / heartbeat reply ($JS.FC)"
	groupKV        = "KV write"
	groupObject    = "object store write"
	groupEvent     = "status event (jobs.status)"
	groupStream    = "stream publish (ticket or request)"
	groupReply     = "reply to a request (_INBOX)"
	groupOther     = "other"
)

// classify names the kind of one message a client sent the server, from its
// subject, headers and payload.
func classify(subject, reply string, hdr, payload []byte) msgKind {
	t := strings.Split(subject, ".")
	switch {
	case strings.HasPrefix(subject, "$JS.API.CONSUMER.MSG.NEXT.") && len(t) >= 7:
		return msgKind{groupPull, t[5] + " / " + idless(t[6])}
	case strings.HasPrefix(subject, "$JS.API.DIRECT.GET.") && len(t) >= 5:
		return msgKind{groupDirectGet, bucketOf(t[4])}
	case strings.HasPrefix(subject, "$JS.API.STREAM.MSG.GET.") && len(t) >= 6:
		return msgKind{groupMsgGet, bucketOf(t[5])}
	case strings.HasPrefix(subject, "$JS.API."):
		return msgKind{groupAPI, apiVerb(t[2:])}
	case strings.HasPrefix(subject, "$JS.ACK."):
		return msgKind{groupAck, ackOf(t, payload)}
	case strings.HasPrefix(subject, "$JS.FC."):
		return msgKind{groupFlow, ""}
	case strings.HasPrefix(subject, "$KV.") && len(t) >= 3:
		return msgKind{groupKV, kvWriteOf(t[1], hdr, payload)}
	case strings.HasPrefix(subject, "$O.") && len(t) >= 3:
		return msgKind{groupObject, t[1] + " " + map[string]string{"C": "chunk", "M": "meta"}[t[2]]}
	case strings.HasPrefix(subject, "_INBOX."):
		return msgKind{groupReply, ""}
	case subject == "jobs.status":
		return msgKind{groupEvent, field(payload, "step") + " " + field(payload, "status")}
	case !strings.HasPrefix(subject, "$") && reply != "":
		return msgKind{groupStream, subject}
	}
	return msgKind{groupOther, idlessSubject(t)}
}

// bucketOf names a KV bucket by its stream (KV_jobs: jobs).
func bucketOf(stream string) string { return strings.TrimPrefix(stream, "KV_") }

// apiVerb is a JetStream API request's verb and stream, without generated names:
// CONSUMER.CREATE KV_jobs, STREAM.INFO JOBS.
func apiVerb(t []string) string {
	var verb []string
	for i, tok := range t {
		if tok != strings.ToUpper(tok) || strings.HasPrefix(tok, "KV_") || strings.HasPrefix(tok, "OBJ_") || i >= 3 {
			return strings.Join(verb, ".") + " " + idless(tok)
		}
		verb = append(verb, tok)
	}
	return strings.Join(verb, ".")
}

// ackOf names an acknowledgement by its consumer and kind. The subject is
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending> or,
// with domain and account hash, two tokens longer.
func ackOf(t []string, payload []byte) string {
	stream, consumer := "?", "?"
	switch {
	case len(t) == 9:
		stream, consumer = t[2], t[3]
	case len(t) >= 11:
		stream, consumer = t[4], t[5]
	}
	kind := "ack"
	switch {
	case bytes.HasPrefix(payload, []byte("-NAK")):
		kind = "nak"
	case bytes.HasPrefix(payload, []byte("+WPI")):
		kind = "in progress"
	case bytes.HasPrefix(payload, []byte("+TERM")):
		kind = "term"
	case bytes.HasPrefix(payload, []byte("+NXT")):
		kind = "ack + next"
	}
	return kind + " " + stream + " / " + idless(consumer)
}

// kvWriteOf names a KV write by bucket and operation (create: expected revision
// 0; update: another expected revision; put: none; delete, purge), and a write of
// the jobs bucket also by the job's status, step and stage as written.
func kvWriteOf(bucket string, hdr, payload []byte) string {
	op := "put"
	switch {
	case bytes.Contains(hdr, []byte("KV-Operation: DEL")):
		op = "delete"
	case bytes.Contains(hdr, []byte("KV-Operation: PURGE")):
		op = "purge"
	case bytes.Contains(hdr, []byte("Nats-Expected-Last-Subject-Sequence: 0\r")):
		op = "create"
	case bytes.Contains(hdr, []byte("Nats-Expected-Last-Subject-Sequence:")):
		op = "update"
	}
	if bucket != "jobs" || op == "delete" || op == "purge" {
		return bucket + " " + op
	}
	s := bucket + " " + op + ": " + field(payload, "status") + "/" + field(payload, "current_step")
	if st := field(payload, "stage"); st != "" {
		s += ", ticket " + st
	}
	if bytes.Contains(payload, []byte(`"lease":{`)) {
		s += ", leased"
	}
	return s
}

// field is the first string value of key in a JSON document, found by a byte
// search: in the contract's JSON a key's quoted name and colon cannot occur
// inside a string value (its quotes are escaped there), and the top-level
// fields read here come before any nested ones.
func field(doc []byte, key string) string {
	k := []byte(`"` + key + `":"`)
	i := bytes.Index(doc, k)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// idless replaces a generated name (an ordered consumer's, a job id) by *.
func idless(tok string) string {
	if len(tok) >= 16 {
		return "*"
	}
	return tok
}

func idlessSubject(t []string) string {
	out := make([]string, len(t))
	for i, tok := range t {
		out[i] = idless(tok)
	}
	return strings.Join(out, ".")
}
