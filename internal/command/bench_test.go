package command

import "testing"

func BenchmarkEncodeInsert(b *testing.B) {
	c := insertCommand()
	buf, _ := Encode(nil, c)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Encode(buf[:0], c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInsert(b *testing.B) {
	buf, _ := Encode(nil, insertCommand())
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeResultExec(b *testing.B) {
	r := &Result{RowsAffected: 1, LastInsertID: 12345}
	buf, _ := EncodeResult(nil, r)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = EncodeResult(buf[:0], r)
	}
}

func BenchmarkDecodeResultExec(b *testing.B) {
	buf, _ := EncodeResult(nil, &Result{RowsAffected: 1, LastInsertID: 12345})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeResult(buf); err != nil {
			b.Fatal(err)
		}
	}
}
