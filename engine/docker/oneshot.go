package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/moat-platform/moat/state"
)

// oneShotTimeout bounds a one-shot container from create to removal.
const oneShotTimeout = 60 * time.Second

// runOnce runs spec as a one-shot container (a volume's init step): create
// under the spec's name plus a random suffix (two replicas may ensure one
// volume at once), start, wait for it to exit, and remove it whatever
// happened. A non-zero exit is an error carrying the end of its output.
func (e *Engine) runOnce(ctx context.Context, spec state.ContainerSpec) error {
	ctx, cancel := context.WithTimeout(ctx, oneShotTimeout)
	defer cancel()
	b := make([]byte, 4)
	rand.Read(b)
	spec.Name += "." + hex.EncodeToString(b)
	cfg, hc, nc, err := containerConfig(spec)
	if err != nil {
		return fmt.Errorf("run %s: %w", spec.Name, err)
	}
	resp, err := e.cli.ContainerCreate(ctx, cfg, hc, nc, nil, spec.Name)
	if err != nil {
		if isMessage(err, "no such image") {
			return fmt.Errorf("run %s: image %s is not on the engine (moat never pulls; build it with `make images` or scripts/build-images.sh moat): %w",
				spec.Name, spec.Image, notFound{err})
		}
		return wrap(err, "run %s: create", spec.Name)
	}
	defer func() {
		// Remove even if ctx ended (that may be why we are leaving).
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer rcancel()
		_ = ignoreNotFound(e.cli.ContainerRemove(rctx, resp.ID, container.RemoveOptions{Force: true}))
	}()
	if err := e.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return wrap(err, "run %s: start", spec.Name)
	}
	waitC, errC := e.cli.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	var code int64
	select {
	case w := <-waitC:
		if w.Error != nil && w.Error.Message != "" {
			return fmt.Errorf("run %s: wait: %s", spec.Name, w.Error.Message)
		}
		code = w.StatusCode
	case err := <-errC:
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("run %s: the container vanished before it exited", spec.Name)
		}
		return wrap(err, "run %s: wait", spec.Name)
	}
	if code == 0 {
		return nil
	}
	return fmt.Errorf("run %s: exit status %d: %s", spec.Name, code, e.tail(ctx, resp.ID))
}

// tail returns the last lines a container wrote (stdout and stderr), for
// an error message; "" when they cannot be read.
func (e *Engine) tail(ctx context.Context, id string) string {
	rc, err := e.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 4<<10)); err != nil && out.Len() == 0 {
		return ""
	}
	return strings.TrimSpace(out.String())
}
