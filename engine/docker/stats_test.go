package docker

import "testing"

func TestEndpointPattern(t *testing.T) {
	for in, want := range map[string]string{
		"/_ping":                         "/_ping",
		"/v1.41/containers/json":         "/containers/json",
		"/v1.41/containers/create":       "/containers/create",
		"/v1.41/containers/abc123/start": "/containers/{id}/start",
		"/v1.41/containers/abc123":       "/containers/{id}",
		"/v1.41/networks":                "/networks",
		"/v1.41/networks/create":         "/networks/create",
		"/v1.41/networks/n1/connect":     "/networks/{id}/connect",
		"/v1.41/volumes/data":            "/volumes/{id}",
		"/v1.41/images/localhost/x:1":    "/images/{id}",
		"/v1.41/images/a/b:1/json":       "/images/{id}/json",
	} {
		if got := endpointPattern(in); got != want {
			t.Errorf("endpointPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNoCallCount(t *testing.T) {
	e := connect(t, Options{NoCallCount: true})
	if total, calls := e.Stats(); total != 0 || len(calls) != 0 {
		t.Errorf("stats with counting off: %d %v", total, calls)
	}
}
