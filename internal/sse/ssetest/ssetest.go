// Package ssetest reads Server-Sent Events as a browser does, for tests: a
// parser written from the WHATWG HTML specification, independent of the
// encoder it checks.
package ssetest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// An Event is what a browser's MessageEvent carries.
type Event struct {
	Type, Data, LastEventID string
}

// A Stream is what a browser makes of a whole event stream. Retry is -1 when no valid retry
// field was seen. Comments are kept, with one leading space stripped, only so tests can see them.
type Stream struct {
	Events   []Event
	Retry    int
	Comments []string
}

// Parse interprets a complete event stream step by step as WHATWG HTML, "Server-sent events",
// section "Interpreting an event stream", tells a browser to.
func Parse(b []byte) Stream {
	s := Stream{Retry: -1}
	var p parser
	p.retry = -1
	text := strings.TrimPrefix(DecodeUTF8(b), "\uFEFF")
	for {
		// Lines end with CRLF, a lone CR or a lone LF. Once the end of the
		// stream is reached, an unfinished line or event is discarded.
		end := strings.IndexAny(text, "\r\n")
		if end < 0 {
			s.Retry = p.retry
			return s
		}
		line := text[:end]
		if strings.HasPrefix(text[end:], "\r\n") {
			end++
		}
		text = text[end+1:]
		switch f, ok := p.line(line); {
		case !ok:
		case f.IsComment:
			s.Comments = append(s.Comments, f.Comment)
		default:
			s.Events = append(s.Events, f.Event)
		}
	}
}

// A parser is the state a browser keeps while it reads a stream: the
// fields of the event being read, the last event ID and the retry delay.
type parser struct {
	data, eventType strings.Builder
	lastEventID     string
	retry           int
}

// line interprets one line and reports what it completed: an event (on a
// blank line after data) or a comment; false when neither.
func (p *parser) line(line string) (Frame, bool) {
	switch {
	case line == "": // dispatch
		if p.data.Len() == 0 {
			p.eventType.Reset()
			return Frame{}, false
		}
		ev := Event{Type: "message", Data: strings.TrimSuffix(p.data.String(), "\n"), LastEventID: p.lastEventID}
		if p.eventType.Len() > 0 {
			ev.Type = p.eventType.String()
		}
		p.data.Reset()
		p.eventType.Reset()
		return Frame{Event: ev}, true
	case line[0] == ':':
		return Frame{Comment: strings.TrimPrefix(line[1:], " "), IsComment: true}, true
	}
	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch field {
	case "event":
		p.eventType.Reset()
		p.eventType.WriteString(value)
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.ContainsRune(value, 0) {
			p.lastEventID = value
		}
	case "retry":
		// Browsers ignore an empty value, which "only ASCII digits" allows.
		if value != "" && strings.Trim(value, "0123456789") == "" {
			if n, err := strconv.Atoi(value); err == nil {
				p.retry = n
			}
		}
	}
	return Frame{}, false
}

// DecodeUTF8 is the WHATWG Encoding Standard's UTF-8 decoder with replacement, written out as its
// state machine (not Go's, which replaces per byte or per run) so that the tests see what a
// browser sees. It does not strip a BOM; the event stream parser does that.
func DecodeUTF8(b []byte) string {
	var out strings.Builder
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); {
		c := b[i]
		if needed == 0 {
			i++
			switch {
			case c <= 0x7F:
				out.WriteByte(c)
			case 0xC2 <= c && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case 0xE0 <= c && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case 0xF0 <= c && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out.WriteRune(utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			// Error: reset, and read c again as the start of a new sequence.
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out.WriteRune(utf8.RuneError)
			continue
		}
		i++
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		if seen++; seen == needed {
			out.WriteRune(cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out.WriteRune(utf8.RuneError)
	}
	return out.String()
}

// A Reader reads an event stream as it arrives, one event or comment at a
// time, the way a browser's EventSource does: fields accumulate until a
// blank line dispatches them. Its lines end with LF or CRLF, as every
// stream the encoder writes does.
type Reader struct {
	br *bufio.Reader
	p  parser
	// Retry is the last valid retry field seen, -1 before any.
	Retry int
}

// NewReader returns a Reader of r, which must be UTF-8 (the encoder's
// output always is).
func NewReader(r io.Reader) *Reader {
	rd := &Reader{br: bufio.NewReader(r), Retry: -1}
	rd.p.retry = -1
	return rd
}

// A Frame is what one call to Next read: an event, or a comment.
type Frame struct {
	Event   Event
	Comment string
	// IsComment tells a comment from an event.
	IsComment bool
}

// Next reads until an event is dispatched or a comment line is read. At
// the end of the stream it returns io.EOF; an unfinished event is
// discarded, as a browser discards it.
func (r *Reader) Next() (Frame, error) {
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		f, ok := r.p.line(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
		r.Retry = r.p.retry
		if ok {
			return f, nil
		}
	}
}

// NextEvent reads until an event is dispatched, skipping comments.
func (r *Reader) NextEvent() (Event, error) {
	for {
		f, err := r.Next()
		if err != nil || !f.IsComment {
			return f.Event, err
		}
	}
}

// LastEventID is the id a browser would send as Last-Event-ID if it
// reconnected now.
func (r *Reader) LastEventID() string { return r.p.lastEventID }
