package command

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Value tags. A tag is never reused for another meaning: old log entries must stay readable.
const (
	tagNull     byte = 0
	tagInt      byte = 1 // zigzag varint
	tagFloat    byte = 2 // 8 bytes little-endian IEEE 754 bits
	tagFalse    byte = 3
	tagTrue     byte = 4
	tagNilBytes byte = 5 // []byte(nil): binds NULL, unlike an empty blob
	tagBytes    byte = 6 // uvarint length + bytes
	tagString   byte = 7 // uvarint length + bytes
	tagTime     byte = 8 // varint Unix seconds, uvarint nanoseconds, varint zone offset, zone name string
)

const nanosPerSecond = 1_000_000_000

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendValue appends the tagged encoding of v; ok is false for an unsupported type.
func appendValue(dst []byte, v any) (_ []byte, ok bool) {
	switch v := v.(type) {
	case nil:
		return append(dst, tagNull), true
	case int64:
		return binary.AppendVarint(append(dst, tagInt), v), true
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(v)), true
	case bool:
		if v {
			return append(dst, tagTrue), true
		}
		return append(dst, tagFalse), true
	case []byte:
		if v == nil {
			return append(dst, tagNilBytes), true
		}
		dst = binary.AppendUvarint(append(dst, tagBytes), uint64(len(v)))
		return append(dst, v...), true
	case string:
		return appendString(append(dst, tagString), v), true
	case time.Time:
		name, offset := v.Zone()
		dst = binary.AppendVarint(append(dst, tagTime), v.Unix())
		dst = binary.AppendUvarint(dst, uint64(v.Nanosecond()))
		dst = binary.AppendVarint(dst, int64(offset))
		return appendString(dst, name), true
	}
	return dst, false
}

// decoder reads the wire format. The first error sticks: later reads return zero values, so
// callers check err once at the end (or before allocating from a count).
type decoder struct {
	buf []byte
	off int
	err error

	// The last fixed zone built, reused for runs of times in one zone (a DATETIME column).
	zone       *time.Location
	zoneName   string
	zoneOffset int
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("command: "+format+" (at byte %d of %d)", append(args, d.off, len(d.buf))...)
	}
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

// version reads the header byte and refuses encodings this node cannot understand.
func (d *decoder) version() byte {
	if len(d.buf) == 0 {
		d.fail("empty input")
		return 0
	}
	v := d.buf[0]
	switch {
	case v == 0:
		d.fail("invalid encoding version 0")
	case v > Version:
		d.fail("encoding version %d is newer than the versions this node reads (up to %d); upgrade this node", v, Version)
	}
	d.off = 1
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("truncated input")
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	// Fast path: most lengths, counts and IDs fit in one byte.
	if d.off < len(d.buf) && d.buf[d.off] < 0x80 {
		d.off++
		return uint64(d.buf[d.off-1])
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	switch {
	case n == 0:
		d.fail("truncated varint")
		return 0
	case n < 0:
		d.fail("varint overflows 64 bits")
		return 0
	case n > 1 && d.buf[d.off+n-1] == 0:
		// Only minimal varints are accepted so that every value has exactly one encoding.
		d.fail("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.Varint
}

func (d *decoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail("integer %d overflows int", v)
		return 0
	}
	return int(v)
}

func (d *decoder) uint64Fixed() uint64 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 8 {
		d.fail("truncated fixed 8-byte field")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf[d.off:])
	d.off += 8
	return v
}

// count reads an element count and checks that count elements of at least minSize bytes each
// fit in the rest of the input, so a forged count cannot make the caller allocate much.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(d.remaining()/minSize) {
		d.fail("%s count %d exceeds the remaining input", what, n)
		return 0
	}
	return int(n)
}

// rawBytes returns a length-prefixed slice that aliases the input; callers copy it.
func (d *decoder) rawBytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail("length %d exceeds the remaining input", n)
		return nil
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) string() string { return string(d.rawBytes()) }

func (d *decoder) strings(what string) []string {
	n := d.count(what, 1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func (d *decoder) value() any {
	switch tag := d.byte(); tag {
	case tagNull:
		return nil
	case tagInt:
		return d.varint()
	case tagFloat:
		return math.Float64frombits(d.uint64Fixed())
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagNilBytes:
		return []byte(nil)
	case tagBytes:
		raw := d.rawBytes()
		// Copy: the input buffer may be reused by the caller. make(0) keeps an empty blob non-nil.
		b := make([]byte, len(raw))
		copy(b, raw)
		return b
	case tagString:
		return d.string()
	case tagTime:
		return d.time()
	default:
		d.fail("unknown value tag %d", tag)
		return nil
	}
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= nanosPerSecond {
		d.fail("time nanoseconds %d out of range", nsec)
	}
	offset := d.int()
	name := d.string()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).In(d.location(name, offset))
}

func (d *decoder) location(name string, offset int) *time.Location {
	if name == "UTC" && offset == 0 {
		return time.UTC
	}
	if d.zone == nil || d.zoneName != name || d.zoneOffset != offset {
		d.zone, d.zoneName, d.zoneOffset = time.FixedZone(name, offset), name, offset
	}
	return d.zone
}

// finish reports trailing bytes after a complete encoding.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%d trailing bytes", len(d.buf)-d.off)
	}
	return d.err
}
