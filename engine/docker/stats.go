package docker

import (
	"net/http"
	"strings"
	"sync"
)

// countingTransport wraps the client's transport and counts requests. It
// counts attempts, failed ones included: the point is what we asked of the
// engine.
type countingTransport struct {
	base http.RoundTripper

	mu    sync.Mutex
	total int
	calls map[string]int
}

func newCountingTransport(base http.RoundTripper) *countingTransport {
	return &countingTransport{base: base, calls: map[string]int{}}
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + endpointPattern(req.URL.Path)
	t.mu.Lock()
	t.total++
	t.calls[key]++
	t.mu.Unlock()
	return t.base.RoundTrip(req)
}

func (t *countingTransport) stats() (int, map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	calls := make(map[string]int, len(t.calls))
	for k, v := range t.calls {
		calls[k] = v
	}
	return t.total, calls
}

func (t *countingTransport) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total = 0
	t.calls = map[string]int{}
}

// objectCollections are the path roots whose second segment is an object
// id or name; replacing it keeps the stats keyed by endpoint, not by
// object.
var objectCollections = map[string]bool{
	"containers": true, "networks": true, "volumes": true, "images": true, "exec": true,
}

// collectionVerbs are second segments that are endpoints, not objects.
var collectionVerbs = map[string]bool{
	"json": true, "create": true, "prune": true, "load": true, "search": true, "get": true,
}

// endpointPattern turns "/v1.41/containers/abc/start" into
// "/containers/{id}/start".
func endpointPattern(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && len(segs[0]) > 1 && segs[0][0] == 'v' && strings.ContainsAny(segs[0][1:2], "0123456789") {
		segs = segs[1:]
	}
	if len(segs) >= 2 && objectCollections[segs[0]] && !collectionVerbs[segs[1]] {
		// Image names may contain slashes; everything up to a known verb
		// would be ambiguous, so collapse the rest for images.
		if segs[0] == "images" {
			last := segs[len(segs)-1]
			if last == "json" || last == "history" || last == "tag" || last == "push" {
				segs = []string{"images", "{id}", last}
			} else {
				segs = []string{"images", "{id}"}
			}
		} else {
			segs[1] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}
