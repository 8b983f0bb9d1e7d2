package config

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxLocateBytes bounds the files whose syntax errors are located by
// re-parsing (below): about 40 parses of the file, so a hostile repository
// of many broken files cannot make validation slow. Config files are small.
const maxLocateBytes = 256 << 10

// locateSyntax finds the token a YAML syntax error is about. yaml.v3's
// message names the line where the enclosing mapping starts ("line 3"),
// not where the bad token is (line 11, column 49), and no column at all;
// its parser knows the token but does not export it. The parser reads in
// order and fails at the first token it cannot use, so the shortest prefix
// of the file that fails with exactly the same message ends with the first
// byte of that token: found by bisection, first over lines, then inside
// the line.
//
// Inside a flow collection ({a: 1, b: 2}) a cut prefix fails with the same
// message at any point, so for those messages the bisection would point at
// the wrong token: they keep yaml.v3's line (the collection's, which is
// usually the line of the mistake too).
func locateSyntax(data []byte, errText string) (line, col int, ok bool) {
	if len(data) > maxLocateBytes || strings.Contains(errText, "did not find expected ',' or") {
		return 0, 0, false
	}
	same := func(n int) bool { return parseErr(data[:n]) == errText }
	if !same(len(data)) {
		return 0, 0, false
	}
	// Line ends: the offset after each newline, and the end of the data.
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	lo, hi := 0, len(ends)-1 // smallest line index whose end fails
	for lo < hi {
		mid := (lo + hi) / 2
		if same(ends[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	start := 0
	if lo > 0 {
		start = ends[lo-1]
	}
	a, b := start+1, ends[lo] // smallest prefix length inside the line
	for a < b {
		mid := (a + b) / 2
		if same(mid) {
			b = mid
		} else {
			a = mid + 1
		}
	}
	if !same(a) || (a > 0 && same(a-1)) {
		return 0, 0, false
	}
	return lo + 1, utf8.RuneCount(data[start:a-1]) + 1, true
}

// parseErr parses every document of data and returns the first error's
// text ("" when it parses).
func parseErr(data []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := decodeNode(dec, &n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			return err.Error()
		}
	}
}
