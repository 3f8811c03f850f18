package main

import (
	"testing"
)

// BenchmarkSmallChangeCompile is figure 3's compile: the changed topology of
// the 100,000-flow set compiled again (Compile + CompileEndpoints).
// go test ./bench -run '^$' -bench SmallChangeCompile -cpuprofile /tmp/c.prof
func BenchmarkSmallChangeCompile(b *testing.B) {
	fs, err := flowSetOf(100000)
	if err != nil {
		b.Fatal(err)
	}
	changed, err := fs.withExtraPort()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := changed.compile(); err != nil {
			b.Fatal(err)
		}
	}
}
