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
	var data, eventType strings.Builder
	var lastEventID string
	text := strings.TrimPrefix(DecodeUTF8(b), "\uFEFF")
	for {
		// Lines end with CRLF, a lone CR or a lone LF. Once the end of the
		// stream is reached, an unfinished line or event is discarded.
		end := strings.IndexAny(text, "\r\n")
		if end < 0 {
			return s
		}
		line := text[:end]
		if strings.HasPrefix(text[end:], "\r\n") {
			end++
		}
		text = text[end+1:]

		switch {
		case line == "": // dispatch
			if data.Len() == 0 {
				eventType.Reset()
				continue
			}
			ev := Event{Type: "message", Data: strings.TrimSuffix(data.String(), "\n"), LastEventID: lastEventID}
			if eventType.Len() > 0 {
				ev.Type = eventType.String()
			}
			s.Events = append(s.Events, ev)
			data.Reset()
			eventType.Reset()
		case line[0] == ':':
			s.Comments = append(s.Comments, strings.TrimPrefix(line[1:], " "))
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				eventType.Reset()
				eventType.WriteString(value)
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			case "id":
				if !strings.ContainsRune(value, 0) {
					lastEventID = value
				}
			case "retry":
				// Browsers ignore an empty value, which "only ASCII digits" allows.
				if value != "" && strings.Trim(value, "0123456789") == "" {
					if n, err := strconv.Atoi(value); err == nil {
						s.Retry = n
					}
				}
			}
		}
	}
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
// blank line dispatches them.
type Reader struct {
	br          *bufio.Reader
	lastEventID string
	// Retry is the last valid retry field seen, -1 before any.
	Retry int
}

// NewReader returns a Reader of r, which must be UTF-8 (the encoder's
// output always is).
func NewReader(r io.Reader) *Reader { return &Reader{br: bufio.NewReader(r), Retry: -1} }

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
	var data, eventType strings.Builder
	hasData := false
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if !hasData {
				eventType.Reset()
				continue
			}
			ev := Event{Type: "message", Data: strings.TrimSuffix(data.String(), "\n"), LastEventID: r.lastEventID}
			if eventType.Len() > 0 {
				ev.Type = eventType.String()
			}
			return Frame{Event: ev}, nil
		case line[0] == ':':
			return Frame{Comment: strings.TrimPrefix(line[1:], " "), IsComment: true}, nil
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				eventType.Reset()
				eventType.WriteString(value)
			case "data":
				hasData = true
				data.WriteString(value)
				data.WriteByte('\n')
			case "id":
				if !strings.ContainsRune(value, 0) {
					r.lastEventID = value
				}
			case "retry":
				if value != "" && strings.Trim(value, "0123456789") == "" {
					if n, err := strconv.Atoi(value); err == nil {
						r.Retry = n
					}
				}
			}
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
func (r *Reader) LastEventID() string { return r.lastEventID }
