// Package serve is the graceful HTTP lifecycle shared by the example
// images: listen until the context ends (SIGTERM from docker stop), then
// drain in-flight requests for a bounded time.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"
)

// ShutdownTimeout bounds the drain; docker stop's own timeout is longer.
const ShutdownTimeout = 5 * time.Second

// Run runs srv until ctx is cancelled, then shuts it down gracefully,
// waiting at most ShutdownTimeout for in-flight requests.
func Run(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err // failed to listen, or stopped unexpectedly
	case <-ctx.Done():
	}
	log.Printf("signal received, shutting down (max %s)", ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
