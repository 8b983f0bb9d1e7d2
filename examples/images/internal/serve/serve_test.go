package serve

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestRunShutsDownOnCancel(t *testing.T) {
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, srv) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunReportsListenError(t *testing.T) {
	srv := &http.Server{Addr: "256.0.0.1:1"}
	if err := Run(context.Background(), srv); err == nil {
		t.Fatal("Run on an impossible address returned nil")
	}
}
