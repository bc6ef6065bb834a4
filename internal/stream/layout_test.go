package stream

import (
	"testing"
	"unsafe"
)

// The writer's walk reads each stream's first two cache lines and nothing
// else of it (see stream): a field added to a stream must keep them so.
func TestTheWalkReadsTwoCacheLinesOfAStream(t *testing.T) {
	var s stream
	if size := unsafe.Sizeof(s); size%128 != 0 {
		t.Errorf("a stream is %d bytes, not a multiple of 128: make streamPad %d", size, (128-size%128+streamPad)%128)
	}
	first := map[string]uintptr{
		"ending":       unsafe.Offsetof(s.ending),
		"hops":         unsafe.Offsetof(s.hops),
		"tagged":       unsafe.Offsetof(s.tagged),
		"flushing":     unsafe.Offsetof(s.flushing) + unsafe.Sizeof(s.flushing) - 1,
		"cursor.kind":  unsafe.Offsetof(s.cursor) + unsafe.Offsetof(s.cursor.kind),
		"cursor.ended": unsafe.Offsetof(s.cursor) + unsafe.Offsetof(s.cursor.ended),
		"cursor.last":  unsafe.Offsetof(s.cursor) + unsafe.Offsetof(s.cursor.last) + 7,
		"out":          unsafe.Offsetof(s.out) + unsafe.Sizeof(s.out) - 1,
	}
	for name, end := range first {
		if end >= 64 {
			t.Errorf("%s ends at byte %d of a stream, past its first cache line", name, end)
		}
	}
	second := map[string]uintptr{
		"nextBeat":       unsafe.Offsetof(s.nextBeat) + unsafe.Sizeof(s.nextBeat) - 1,
		"direct.fd":      unsafe.Offsetof(s.direct) + unsafe.Offsetof(s.direct.fd) + unsafe.Sizeof(s.direct.fd) - 1,
		"direct.chunked": unsafe.Offsetof(s.direct) + unsafe.Offsetof(s.direct.chunked),
	}
	for name, end := range second {
		if end >= 128 {
			t.Errorf("%s ends at byte %d of a stream, past its second cache line", name, end)
		}
	}
}
