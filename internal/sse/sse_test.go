package sse

import (
	"bytes"
	"errors"
	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name          string
		id, event     string
		data          string
		wire          string
		wantData      string
		wantType      string
		wantLastEvent string
	}{
		{
			name: "a plain event has id, event and data lines",
			id:   "7", event: "order_update", data: `{"status":"cooking"}`,
			wire:     "id: 7\nevent: order_update\ndata: {\"status\":\"cooking\"}\n\n",
			wantData: `{"status":"cooking"}`, wantType: "order_update", wantLastEvent: "7",
		},
		{
			name: "an event without id or name is a message and writes only data",
			data: "hello",
			wire: "data: hello\n\n", wantData: "hello", wantType: "message",
		},
		{
			name: "LF in data splits it into data lines",
			data: "a\nb", wire: "data: a\ndata: b\n\n", wantData: "a\nb", wantType: "message",
		},
		{
			name: "a lone CR in data splits it and arrives as LF",
			data: "a\rb", wire: "data: a\ndata: b\n\n", wantData: "a\nb", wantType: "message",
		},
		{
			name: "CRLF in data is one line break, not two",
			data: "a\r\nb", wire: "data: a\ndata: b\n\n", wantData: "a\nb", wantType: "message",
		},
		{
			name: "mixed line breaks each split once",
			data: "a\r\n\rb\n\nc\r", wire: "data: a\ndata: \ndata: b\ndata: \ndata: c\ndata: \n\n",
			wantData: "a\n\nb\n\nc\n", wantType: "message",
		},
		{
			name: "data starting with a space keeps the space",
			data: "  two spaces\n line two", wire: "data:   two spaces\ndata:  line two\n\n",
			wantData: "  two spaces\n line two", wantType: "message",
		},
		{
			name: "id and name starting with a space keep the space",
			id:   " 1", event: " x", data: "d", wire: "id:  1\nevent:  x\ndata: d\n\n",
			wantData: "d", wantType: " x", wantLastEvent: " 1",
		},
		{
			name: "empty data still dispatches an event",
			wire: "data: \n\n", wantType: "message",
		},
		{
			name: "data that is only a line break arrives as that line break",
			data: "\r\n", wire: "data: \ndata: \n\n", wantData: "\n", wantType: "message",
		},
		{
			name:  "a field in data stays literal text of one event",
			event: "order_update", data: "x\nevent: injected",
			wire:     "event: order_update\ndata: x\ndata: event: injected\n\n",
			wantData: "x\nevent: injected", wantType: "order_update",
		},
		{
			name: "a blank line in data cannot end the event early",
			data: "a\r\n\r\nid: 9\r\n\r\nb", wire: "data: a\ndata: \ndata: id: 9\ndata: \ndata: b\n\n",
			wantData: "a\n\nid: 9\n\nb", wantType: "message",
		},
		{
			name: "NUL in data passes through",
			data: "a\x00b", wire: "data: a\x00b\n\n", wantData: "a\x00b", wantType: "message",
		},
		{
			name: "a BOM at the start of data survives",
			data: "\uFEFFx", wire: "data: \uFEFFx\n\n", wantData: "\uFEFFx", wantType: "message",
		},
		{
			name: "each invalid byte in data becomes U+FFFD",
			data: "a\xff\xfeb", wire: "data: a\uFFFD\uFFFDb\n\n", wantData: "a\uFFFD\uFFFDb", wantType: "message",
		},
		{
			name: "a truncated multibyte sequence becomes one U+FFFD, as in the browser",
			data: "\xe2\x82\n\xf0\x9f\x98", wire: "data: \uFFFD\ndata: \uFFFD\n\n",
			wantData: "\uFFFD\n\uFFFD", wantType: "message",
		},
		{
			name: "an encoded surrogate becomes three U+FFFD, as in the browser",
			data: "\xed\xa0\x80", wire: "data: \uFFFD\uFFFD\uFFFD\n\n",
			wantData: "\uFFFD\uFFFD\uFFFD", wantType: "message",
		},
		{
			name: "U+FFFD itself is data like any other",
			data: "\uFFFD", wire: "data: \uFFFD\n\n", wantData: "\uFFFD", wantType: "message",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			got, err := AppendEvent(prefix, tt.id, tt.event, []byte(tt.data))
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendEvent dropped dst: got %q", got)
			}
			if got, want := string(got[len(prefix):]), tt.wire; got != want {
				t.Errorf("wire:\ngot  %q\nwant %q", got, want)
			}
			s := ssetest.Parse(got[len(prefix):])
			want := []ssetest.Event{{Type: tt.wantType, Data: tt.wantData, LastEventID: tt.wantLastEvent}}
			if !reflect.DeepEqual(s.Events, want) {
				t.Errorf("parsed events:\ngot  %+q\nwant %+q", s.Events, want)
			}
		})
	}
}

func TestAppendEventRefusesUnsafeFields(t *testing.T) {
	tests := []struct {
		name      string
		id, event string
	}{
		{"an id with LF", "1\nevent: injected", ""},
		{"an id with CR", "1\r", ""},
		{"an id with CRLF", "1\r\n", ""},
		{"an id with NUL, which the browser would ignore", "1\x00", ""},
		{"an id that is not valid UTF-8", "1\xff", ""},
		{"an id with a truncated multibyte sequence", "\xe2\x82", ""},
		{"a name with LF", "", "a\ndata: injected"},
		{"a name with CR", "", "a\rb"},
		{"a name with NUL", "", "a\x00"},
		{"a name that is not valid UTF-8", "", "\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendEvent(dst, tt.id, tt.event, []byte("data"))
			if !errors.Is(err, ErrFieldBreak) {
				t.Fatalf("err = %v, want ErrFieldBreak", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Errorf("error message %q holds the raw value; it must be quoted for logs", err)
			}
			if string(got) != "keep" {
				t.Errorf("dst = %q, want it unchanged: %q", got, "keep")
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		name      string
		d         time.Duration
		wire      string
		wantRetry int
	}{
		{"three seconds is 3000 ms", 3 * time.Second, "retry: 3000\n\n", 3000},
		{"sub-millisecond parts are dropped", 1500 * time.Microsecond, "retry: 1\n\n", 1},
		{"zero is sent as zero", 0, "retry: 0\n\n", 0},
		{"a negative duration is sent as zero, not ignored", -time.Second, "retry: 0\n\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendRetry([]byte("keep"), tt.d)
			if got, want := string(got), "keep"+tt.wire; got != want {
				t.Errorf("wire: got %q, want %q", got, want)
			}
			s := ssetest.Parse(got[len("keep"):])
			if s.Retry != tt.wantRetry || len(s.Events) != 0 {
				t.Errorf("parsed: got retry %d and %d events, want retry %d and none", s.Retry, len(s.Events), tt.wantRetry)
			}
		})
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		name, text   string
		wire         string
		wantComments []string
	}{
		{"a heartbeat is one comment line", "ping", ": ping\n\n", []string{"ping"}},
		{"an empty comment is one comment line", "", ": \n\n", []string{""}},
		{"LF makes two comment lines", "a\nb", ": a\n: b\n\n", []string{"a", "b"}},
		{"CR and CRLF make comment lines too", "a\rb\r\nc", ": a\n: b\n: c\n\n", []string{"a", "b", "c"}},
		{
			"a comment with a newline cannot inject a field",
			"x\ndata: injected\n\nevent: evil\nid: 666\nretry: 1",
			": x\n: data: injected\n: \n: event: evil\n: id: 666\n: retry: 1\n\n",
			[]string{"x", "data: injected", "", "event: evil", "id: 666", "retry: 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendComment([]byte("keep"), tt.text)
			if got, want := string(got), "keep"+tt.wire; got != want {
				t.Errorf("wire: got %q, want %q", got, want)
			}
			// After a real event, the comment must change nothing: no event, no
			// retry, and the last event ID of the next event is still the old one.
			stream, err := AppendEvent(nil, "1", "", []byte("before"))
			if err != nil {
				t.Fatal(err)
			}
			stream = AppendComment(stream, tt.text)
			stream, _ = AppendEvent(stream, "", "", []byte("after"))
			s := ssetest.Parse(stream)
			want := []ssetest.Event{
				{Type: "message", Data: "before", LastEventID: "1"},
				{Type: "message", Data: "after", LastEventID: "1"},
			}
			if !reflect.DeepEqual(s.Events, want) || s.Retry != -1 {
				t.Errorf("parsed: got %+q retry %d, want %+q and no retry", s.Events, s.Retry, want)
			}
			if !reflect.DeepEqual(s.Comments, tt.wantComments) {
				t.Errorf("comments: got %q, want %q", s.Comments, tt.wantComments)
			}
		})
	}
}

// TestSSEParserFollowsSpec checks the test parser itself against the examples in the WHATWG
// specification and the rules the fuzz test relies on, so that a passing test means something.
func TestSSEParserFollowsSpec(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		want      []ssetest.Event
		wantRetry int
	}{
		{
			name:   "the spec's stock ticker example is one event with three lines",
			stream: "data: YHOO\ndata: +2\ndata: 10\n\n",
			want:   []ssetest.Event{{Type: "message", Data: "YHOO\n+2\n10"}},
		},
		{
			name: "the spec's example with ids resets the id and keeps one extra space",
			stream: ": test stream\n\ndata: first event\nid: 1\n\n" +
				"data:second event\nid\n\ndata:  third event\n\n",
			want: []ssetest.Event{
				{Type: "message", Data: "first event", LastEventID: "1"},
				{Type: "message", Data: "second event"},
				{Type: "message", Data: " third event"},
			},
		},
		{
			name:   "the spec's example with empty data fires two events and discards the unfinished one",
			stream: "data\n\ndata\ndata\n\ndata:",
			want:   []ssetest.Event{{Type: "message"}, {Type: "message", Data: "\n"}},
		},
		{
			name:   "the spec's example with and without a space after the colon",
			stream: "data:test\n\ndata: test\n\n",
			want:   []ssetest.Event{{Type: "message", Data: "test"}, {Type: "message", Data: "test"}},
		},
		{
			name:   "a leading BOM is ignored, and CR and CRLF end lines",
			stream: "\uFEFFevent: a\rdata: 1\r\n\r\n",
			want:   []ssetest.Event{{Type: "a", Data: "1"}},
		},
		{
			name:   "an id with NUL is ignored and the old one kept",
			stream: "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
			want:   []ssetest.Event{{Type: "message", Data: "a", LastEventID: "1"}, {Type: "message", Data: "b", LastEventID: "1"}},
		},
		{
			name:   "an event type does not outlive its event",
			stream: "event: a\ndata: 1\n\nevent: b\n\ndata: 2\n\n",
			want:   []ssetest.Event{{Type: "a", Data: "1"}, {Type: "message", Data: "2"}},
		},
		{
			name:      "retry counts only when all digits",
			stream:    "retry: 10\n\nretry: 1x\n\nretry: -1\n\nretry:\n\n",
			wantRetry: 10,
		},
		{
			name:   "bytes are decoded like the browser, one U+FFFD per maximal subpart",
			stream: "data: \xe2\x82\xff\xed\xa0\x80\xf4\x90\n\n",
			want:   []ssetest.Event{{Type: "message", Data: strings.Repeat("\uFFFD", 7)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ssetest.Parse([]byte(tt.stream))
			if !reflect.DeepEqual(s.Events, tt.want) {
				t.Errorf("events:\ngot  %+q\nwant %+q", s.Events, tt.want)
			}
			if tt.wantRetry == 0 {
				tt.wantRetry = -1
			}
			if s.Retry != tt.wantRetry {
				t.Errorf("retry: got %d, want %d", s.Retry, tt.wantRetry)
			}
		})
	}
}

func FuzzAppendEvent(f *testing.F) {
	for _, field := range []string{
		"", "1", "order_update", " lead", "\r", "\n", "\r\n", "a\x00", "\xff\xfe", "\xe2\x82",
		"\xed\xa0\x80", "\uFEFF", "x\nevent: injected",
	} {
		f.Add(field, "", []byte("d"))
		f.Add("", field, []byte("d"))
	}
	for _, data := range []string{
		"", "plain", "a\nb", "a\rb", "a\r\nb", "a\n\rb", "\r\n\r\n", "\n\n", "\r", "a\x00b",
		"\xff\xfe", "\xe2\x82", "\xe2\x82\n", "\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80",
		"x\nevent: injected", "x\r\nid: 9\r\n\r\ndata: y", " lead", "  two", "\n lead", "\uFEFFbom", "\uFFFD",
		`{"token":"abc","seq":3,"status":"cooking","label":"Cooking","by":"worker"}`,
	} {
		f.Add("42", "order_update", []byte(data))
	}
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		dst := []byte("keep")
		out, err := AppendEvent(dst, id, name, data)
		if unsafe := !safeField(id) || !safeField(name); unsafe {
			if !errors.Is(err, ErrFieldBreak) || string(out) != "keep" {
				t.Fatalf("AppendEvent(%q, %q) = %q, %v; want dst unchanged and ErrFieldBreak", id, name, out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendEvent(%q, %q): %v", id, name, err)
		}
		if string(out[:4]) != "keep" {
			t.Fatalf("dst overwritten: %q", out)
		}
		frame := out[4:]
		if !utf8.Valid(frame) {
			t.Errorf("frame is not valid UTF-8: %q", frame)
		}
		want := ssetest.Event{Type: name, Data: normalizeLineBreaks(ssetest.DecodeUTF8(data)), LastEventID: id}
		if want.Type == "" {
			want.Type = "message"
		}
		if got := ssetest.Parse(frame).Events; len(got) != 1 || got[0] != want {
			t.Fatalf("parse(%q):\ngot  %+q\nwant one %+q", frame, got, want)
		}

		// After an earlier event and a comment made of the same bytes, the frame
		// still dispatches exactly one more event, and an empty id keeps the old one.
		stream, _ := AppendEvent(nil, "prev", "prev", []byte("p"))
		stream = AppendComment(stream, string(data))
		stream = append(stream, frame...)
		if want.LastEventID == "" {
			want.LastEventID = "prev"
		}
		s := ssetest.Parse(stream)
		if len(s.Events) != 2 || s.Events[1] != want || s.Retry != -1 {
			t.Fatalf("parse(%q):\ngot  %+q retry %d\nwant prev then %+q", stream, s.Events, s.Retry, want)
		}
		if wantComments := strings.Split(normalizeLineBreaks(ssetest.DecodeUTF8(data)), "\n"); !reflect.DeepEqual(s.Comments, wantComments) {
			t.Fatalf("comments: got %q, want %q", s.Comments, wantComments)
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"token":"q3Vn8kR2pXwL0aZt5yHcJd","seq":3,"status":"out_for_delivery",` +
		`"label":"Out for delivery","at":"2025-11-26T04:58:00Z","by":"worker"}`)
	var dst []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, err = AppendEvent(dst[:0], "1234567", "order_update", data)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func safeField(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "\r\n\x00")
}

func normalizeLineBreaks(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
