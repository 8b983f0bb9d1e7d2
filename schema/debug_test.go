package schema

import (
	"fmt"
	"os"
	"testing"
)

func TestDebug(t *testing.T) {
	src, _ := os.ReadFile(os.Getenv("DOC"))
	ds := Check(parseDocs(t, "x.yaml", string(src)), Options{ImagePrefixes: []string{"localhost/moat-examples/"}})
	for _, d := range ds {
		fmt.Println(d)
	}
}
