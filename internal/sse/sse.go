// Package sse encodes Server-Sent Events frames exactly as browsers parse
// them, so that nothing a caller passes in can end a line early and smuggle
// in a field of its own.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// This file encodes Server-Sent Events frames as the browser parses them (WHATWG HTML, "Server-sent
// events"). Every frame ends with a blank line, so frames can be written back to back in any order,
// and nothing a caller passes in can end a line early and smuggle in a field of its own.

// ErrFieldBreak reports an id or event name that cannot be sent as one SSE field: it holds CR or LF
// (which would end the line and start a field chosen by the value), or NUL, or is not valid UTF-8.
var ErrFieldBreak = errors.New("sse field holds CR, LF, NUL or invalid UTF-8")

// AppendEvent appends one event to dst: an "id:" and an "event:" line when id and name are not
// empty, then the data, then the blank line that makes the browser dispatch it. An empty name
// leaves the browser's default type, "message"; an empty id leaves its last event ID as it was.
//
// Data is written as one "data:" line per line of data, split at CRLF, lone CR and lone LF exactly
// as the browser splits, which joins them back with LF; so CRLF and CR arrive as LF, and at least
// one "data:" line is written, so that even an empty payload dispatches an event. Ill-formed UTF-8
// in data is replaced with U+FFFD the way the browser's decoder would replace it, so the bytes sent
// are the text received. NUL is legal in data and passes through.
//
// An unsafe id or name (see ErrFieldBreak) is refused and nothing is appended. NUL is refused
// because the browser silently ignores an id field holding one, which would break resume without
// an error; names follow the same rule, as a NUL in a name is never meant.
func AppendEvent(dst []byte, id, name string, data []byte) ([]byte, error) {
	if err := CheckField("id", id); err != nil {
		return dst, err
	}
	if err := CheckField("name", name); err != nil {
		return dst, err
	}
	// The browser strips exactly one space after the colon, so writing one keeps any leading
	// space of the value itself.
	if id != "" {
		dst = append(append(append(dst, "id: "...), id...), '\n')
	}
	if name != "" {
		dst = append(append(append(dst, "event: "...), name...), '\n')
	}
	return append(appendLines(dst, "data: ", data), '\n'), nil
}

// CheckField returns ErrFieldBreak, wrapped, if value cannot be sent as the named field.
func CheckField(field, value string) error {
	ok := utf8.ValidString(value)
	for i := 0; ok && i < len(value); i++ {
		ok = value[i] != '\r' && value[i] != '\n' && value[i] != 0
	}
	if !ok {
		return fmt.Errorf("event %s %q: %w", field, value, ErrFieldBreak)
	}
	return nil
}

// AppendRetry appends a frame telling the browser to wait d before reconnecting. The browser
// ignores a retry value that is not all digits, so a negative d is sent as 0.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, max(d.Milliseconds(), 0), 10)
	return append(dst, "\n\n"...)
}

// AppendComment appends text as a comment frame, which the browser ignores; it serves as a
// heartbeat that keeps proxies from closing an idle stream. Each line of text becomes a comment
// line of its own, so a line break in text can never start a field.
func AppendComment(dst []byte, text string) []byte {
	return append(appendLines(dst, ": ", []byte(text)), '\n')
}

// appendLines appends each line of text to dst after prefix and ends it with LF. Its loop is one
// pass that copies runs of ordinary bytes and stops only at a line break or ill-formed UTF-8.
func appendLines(dst []byte, prefix string, text []byte) []byte {
	dst = append(dst, prefix...)
	// One line of valid UTF-8, as a JSON payload always is, is the common case; these three
	// vectorised scans are several times faster than the loop below.
	if bytes.IndexByte(text, '\n') < 0 && bytes.IndexByte(text, '\r') < 0 && utf8.Valid(text) {
		return append(append(dst, text...), '\n')
	}
	start := 0
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\r' || c == '\n':
			dst = append(append(dst, text[start:i]...), '\n')
			dst = append(dst, prefix...)
			i++
			if c == '\r' && i < len(text) && text[i] == '\n' {
				i++
			}
			start = i
		case c < utf8.RuneSelf:
			i++
		default:
			// A well-formed U+FFFD decodes as RuneError too, but with n == 3.
			if r, n := utf8.DecodeRune(text[i:]); r != utf8.RuneError || n > 1 {
				i += n
				continue
			}
			dst = append(append(dst, text[start:i]...), "\uFFFD"...)
			i += illFormedLen(text[i:])
			start = i
		}
	}
	return append(append(dst, text[start:]...), '\n')
}

// illFormedLen returns the length of the ill-formed sequence at the start of p: the longest prefix
// of a well-formed sequence (the "maximal subpart"), or 1. The browser's UTF-8 decoder writes one
// U+FFFD for exactly that many bytes; Go's own decoders would write one per byte, or one per run.
func illFormedLen(p []byte) int {
	n, lo, hi := 0, byte(0x80), byte(0xBF)
	switch b := p[0]; {
	case 0xC2 <= b && b <= 0xDF:
		n = 2
	case 0xE0 <= b && b <= 0xEF:
		n = 3
		if b == 0xE0 {
			lo = 0xA0 // shorter forms exist: overlong
		} else if b == 0xED {
			hi = 0x9F // U+D800 and up: surrogates
		}
	case 0xF0 <= b && b <= 0xF4:
		n = 4
		if b == 0xF0 {
			lo = 0x90 // overlong
		} else if b == 0xF4 {
			hi = 0x8F // beyond U+10FFFF
		}
	}
	i := 1
	for i < n && i < len(p) && lo <= p[i] && p[i] <= hi {
		i, lo, hi = i+1, 0x80, 0xBF
	}
	return i
}
