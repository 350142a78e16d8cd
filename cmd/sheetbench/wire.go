package main

import (
	"bytes"
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// wireCounter counts, by kind, the messages (PUB and HPUB) that the pipeline's
// and the load generator's connections send the server: what the server's
// in_msgs counts, split the way its counters cannot be. It reads the bytes the
// connection writes (a dialer that wraps the TCP connection), so it adds no
// subscriber and no fan-out to the server under measurement; its cost is one
// pass over the written bytes in the connection's flusher.
type wireCounter struct {
	mu     sync.Mutex
	counts map[msgKind]int64
}

// msgKind is one row of the breakdown: a group (KV put, ack, ...) and what
// tells its messages apart within it (bucket and operation, consumer, subject).
type msgKind struct {
	Group, Detail string
}

func newWireCounter() *wireCounter { return &wireCounter{counts: map[msgKind]int64{}} }

// snapshot copies the counts so far.
func (w *wireCounter) snapshot() map[msgKind]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[msgKind]int64, len(w.counts))
	for k, n := range w.counts {
		out[k] = n
	}
	return out
}

func (w *wireCounter) add(k msgKind) {
	w.mu.Lock()
	w.counts[k]++
	w.mu.Unlock()
}

// option makes nats.Connect dial through the counter. A nil counter counts
// nothing.
func (w *wireCounter) option() nats.Option {
	if w == nil {
		return func(*nats.Options) error { return nil }
	}
	return nats.SetCustomDialer(countingDialer{w: w})
}

type countingDialer struct{ w *wireCounter }

func (d countingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, p: &protoParser{onMsg: func(subject, reply string, hdr, payload []byte) {
		d.w.add(classify(subject, reply, hdr, payload))
	}}}, nil
}

// countingConn passes every write to the connection and to the parser.
type countingConn struct {
	net.Conn
	mu sync.Mutex
	p  *protoParser
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.p.feed(b[:n])
	c.mu.Unlock()
	return n, err
}

// protoParser follows the client side of the NATS protocol across writes split
// anywhere: control lines end in CRLF; PUB and HPUB lines are followed by
// their payload (the sizes on the line) and a CRLF. Of a message it keeps at
// most maxKept bytes of headers and payload, all classify reads.
type protoParser struct {
	onMsg func(subject, reply string, hdr, payload []byte)

	line    []byte // the control line read so far
	inMsg   bool   // reading a message's headers, payload and CRLF
	subject string
	reply   string
	hdrLen  int
	left    int    // bytes of the message (headers, payload, CRLF) still to come
	body    []byte // headers and payload kept so far
}

const maxKept = 64 << 10

func (p *protoParser) feed(b []byte) {
	for len(b) > 0 {
		if p.inMsg {
			n := min(p.left, len(b))
			if keep := min(n, maxKept-len(p.body)); keep > 0 {
				p.body = append(p.body, b[:keep]...)
			}
			p.left -= n
			b = b[n:]
			if p.left == 0 {
				p.inMsg = false
				p.deliver()
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return
		}
		p.line = append(p.line, b[:i+1]...)
		b = b[i+1:]
		p.control(bytes.TrimRight(p.line, "\r\n"))
		p.line = p.line[:0]
	}
}

// control reads one control line; only PUB and HPUB carry a message.
func (p *protoParser) control(line []byte) {
	f := strings.Fields(string(line))
	if len(f) < 3 {
		return
	}
	var hdr, total int
	var err error
	switch strings.ToUpper(f[0]) {
	case "PUB": // PUB <subject> [reply] <size>
		total, err = strconv.Atoi(f[len(f)-1])
	case "HPUB": // HPUB <subject> [reply] <header size> <total size>
		if len(f) < 4 {
			return
		}
		hdr, err = strconv.Atoi(f[len(f)-2])
		if err == nil {
			total, err = strconv.Atoi(f[len(f)-1])
		}
		f = f[:len(f)-1]
	default:
		return
	}
	if err != nil {
		return
	}
	p.subject, p.reply, p.hdrLen = f[1], "", hdr
	if len(f) == 4 {
		p.reply = f[2]
	}
	p.inMsg, p.left, p.body = true, total+2, p.body[:0]
}

func (p *protoParser) deliver() {
	body := bytes.TrimSuffix(p.body, []byte("\r\n"))
	hdr := body[:min(p.hdrLen, len(body))]
	p.onMsg(p.subject, p.reply, hdr, body[len(hdr):])
}

// kindCount is how many messages of one kind a run's jobs took each.
type kindCount struct {
	Kind   msgKind
	PerJob float64
}

// kindsSince is the messages of each kind between before and after, per job,
// the most frequent group first and within a group the most frequent kind.
func kindsSince(before, after map[msgKind]int64, jobs float64) []kindCount {
	groups := map[string]float64{}
	var out []kindCount
	for k, n := range after {
		if d := n - before[k]; d > 0 {
			out = append(out, kindCount{Kind: k, PerJob: float64(d) / jobs})
			groups[k.Group] += float64(d) / jobs
		}
	}
	slices.SortFunc(out, func(a, b kindCount) int {
		if g := cmp.Compare(groups[b.Kind.Group], groups[a.Kind.Group]); g != 0 {
			return g
		}
		if g := cmp.Compare(a.Kind.Group, b.Kind.Group); g != 0 {
			return g
		}
		if c := cmp.Compare(b.PerJob, a.PerJob); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind.Detail, b.Kind.Detail)
	})
	return out
}
