package schema

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMemDebug(t *testing.T) {
	docs := genRepo(t, 1000, 10)
	runtime.GC()
	for i := range 3 {
		start := time.Now()
		Check(docs, Options{ImagePrefixes: []string{"localhost/moat-examples/"}})
		el := time.Since(start)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
				fmt.Println(i, el, l, "heapinuse", ms.HeapInuse>>20, "numgc", ms.NumGC)
			}
		}
	}
}
