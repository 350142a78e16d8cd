package main

import (
	"testing"
)

// TestProtoParser feeds a client's protocol stream split at every offset and
// checks that each message is seen once, with its subject, headers and payload,
// and that control lines are not counted.
func TestProtoParser(t *testing.T) {
	stream := "CONNECT {\"verbose\":false}\r\nPING\r\nSUB jobs.status 1\r\n" +
		"PUB jobs.status 36\r\n{\"status\":\"running\",\"step\":\"design\"}\r\n" +
		"HPUB $KV.jobs.abc _INBOX.x.1 52 66\r\nNATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 7\r\n\r\n{\"status\":\"a\"}\r\n" +
		"PUB $JS.ACK.JOBS.design.1.2.3.4.5 -NAK\r\n" + // not a PUB line: too few fields
		"PUB $JS.ACK.JOBS.design.1.2.3.4.5 4\r\n-NAK\r\n" +
		"PUB $JS.API.CONSUMER.MSG.NEXT.JOBS.latex _INBOX.y 0\r\n\r\nUNSUB 1\r\n"
	want := []msgKind{
		{groupEvent, "design running"},
		{groupKV, "jobs update: a/"},
		{groupAck, "nak JOBS / design"},
		{groupPull, "JOBS / latex"},
	}
	for split := 0; split <= len(stream); split++ {
		for _, chunk := range []int{1, 7, len(stream)} {
			var got []msgKind
			p := &protoParser{onMsg: func(subject, reply string, hdr, payload []byte) {
				got = append(got, classify(subject, reply, hdr, payload))
			}}
			b := []byte(stream)
			p.feed(b[:split])
			for rest := b[split:]; len(rest) > 0; {
				n := min(chunk, len(rest))
				p.feed(rest[:n])
				rest = rest[n:]
			}
			if len(got) != len(want) {
				t.Fatalf("split %d, chunk %d: got %v, want %v", split, chunk, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("split %d, chunk %d: message %d = %v, want %v", split, chunk, i, got[i], want[i])
				}
			}
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		subject, reply, hdr, payload string
		want                         msgKind
	}{
		{subject: "$JS.API.DIRECT.GET.KV_jobs.$KV.jobs.abc", want: msgKind{groupDirectGet, "jobs"}},
		{subject: "$JS.API.STREAM.MSG.GET.KV_conversations", want: msgKind{groupMsgGet, "conversations"}},
		{subject: "$JS.API.CONSUMER.CREATE.KV_jobs.Abcdefghijklmnopqrstuv.$KV.jobs.x", want: msgKind{groupAPI, "CONSUMER.CREATE KV_jobs"}},
		{subject: "$JS.API.STREAM.MSG.DELETE.KV_active", want: msgKind{groupAPI, "STREAM.MSG.DELETE KV_active"}},
		{subject: "$JS.ACK.JOBS.Abcdefghijklmnopqrstuv.1.2.3.4.5", payload: "+WPI", want: msgKind{groupAck, "in progress JOBS / *"}},
		{subject: "$JS.ACK.dom.hash.JOBS.meta.1.2.3.4.5.6.tok", want: msgKind{groupAck, "ack JOBS / meta"}},
		{subject: "$KV.active.abc", hdr: "NATS/1.0\r\nKV-Operation: DEL\r\n\r\n", want: msgKind{groupKV, "active delete"}},
		{subject: "$KV.jobs.abc", hdr: "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n",
			payload: `{"id":"x","status":"pending","current_step":"design","stage":"design","seq":1}`,
			want:    msgKind{groupKV, "jobs create: pending/design, ticket design"}},
		{subject: "$KV.jobs.abc", hdr: "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 10\r\n\r\n",
			payload: `{"status":"running","current_step":"latex","stage":"latex","lease":{"owner":"w"}}`,
			want:    msgKind{groupKV, "jobs update: running/latex, ticket latex, leased"}},
		{subject: "$KV.conversations.abc", want: msgKind{groupKV, "conversations put"}},
		{subject: "$O.pdfs.C.Abcdefghijklmnopqrstuv", want: msgKind{groupObject, "pdfs chunk"}},
		{subject: "jobs.design.high", reply: "_INBOX.a", want: msgKind{groupStream, "jobs.design.high"}},
		{subject: "_INBOX.abc.1", want: msgKind{groupReply, ""}},
		{subject: "$JS.FC.JOBS.x.y", want: msgKind{groupFlow, ""}},
		{subject: "sheet.anything.0123456789abcdef0123", want: msgKind{groupOther, "sheet.anything.*"}},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			if got := classify(tt.subject, tt.reply, []byte(tt.hdr), []byte(tt.payload)); got != tt.want {
				t.Fatalf("classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}
