package validate_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/moat-platform/moat/internal/repogen"
	"github.com/moat-platform/moat/validate"
)

// BenchmarkValidate is the whole pipeline (load, decode, CUE schema, Go
// rules) on generated valid repos: the targets are 1,000 apps in 0.5 s and
// 10,000 apps (1,000 tenants) in 3 s on a 2-core machine
// (docs/BENCHMARKS.md).
func BenchmarkValidate(b *testing.B) {
	for _, size := range []struct{ tenants, apps int }{{100, 10}, {1000, 10}} {
		fsys := repogen.Generate(repogen.Options{Tenants: size.tenants, AppsPerTenant: size.apps})
		b.Run(fmt.Sprintf("apps=%d", size.tenants*size.apps), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ds := validate.Run(fsys, validate.Options{}); len(ds) > 0 {
					b.Fatalf("generated repo is invalid: %v", ds[0])
				}
			}
		})
	}
}

// TestRepeatedValidateKeepsHeap validates the same repo 100 times in one
// process: the heap after GC must not grow (a reused CUE context would).
func TestRepeatedValidateKeepsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	fsys := repogen.Generate(repogen.Options{Tenants: 20, AppsPerTenant: 10})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var at10 uint64
	for i := 1; i <= 100; i++ {
		if _, ds := validate.Run(fsys, validate.Options{}); len(ds) > 0 {
			t.Fatalf("generated repo is invalid: %v", ds[0])
		}
		if i == 10 {
			at10 = heap()
		}
	}
	at100 := heap()
	t.Logf("heap after GC: round 10 %d KiB, round 100 %d KiB", at10/1024, at100/1024)
	if at100 > at10+at10/5+(1<<20) {
		t.Errorf("heap grew from %d KiB (round 10) to %d KiB (round 100)", at10/1024, at100/1024)
	}
}
