package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/moat-platform/moat/state"
)

// File format of a persisted fake engine (MOAT_FAKE_ENGINE=path in CLI
// scripts). Maps are written with sorted keys, so the file is stable and a
// script can compare it with cmp.
const (
	fileFormat  = "moat-fake-engine"
	fileVersion = 1
)

type fileState struct {
	Format     string                `json:"format"`
	Version    int                   `json:"version"`
	Seq        int                   `json:"seq"`
	Networks   map[string]*Network   `json:"networks"`
	Containers map[string]*Container `json:"containers"`
	Volumes    map[string]*Volume    `json:"volumes"`
	// Images, when present, lists the images the engine "has"; creating a
	// container from any other fails like Docker without the image. When
	// absent every image exists.
	Images []string `json:"images"`
	// ImageIDs maps an image reference to the id it names (SetImageID);
	// when present Observe reports it as Observed.Images, like the Docker
	// driver's image list, and containers record the id they were made
	// from.
	ImageIDs map[string]string `json:"imageIDs,omitempty"`
	Faults   []Fault           `json:"faults,omitempty"`
	// HostRules is the fake host firewall: instance -> network -> rule-set
	// hash (see Firewall).
	HostRules map[string]map[string]string `json:"hostRules,omitempty"`
	// Swarm mode (see swarm.go) and its secret objects by name.
	Swarm   bool               `json:"swarm,omitempty"`
	Secrets map[string]*Secret `json:"secrets,omitempty"`
	// GatewayBridge is the Swarm node's docker_gwbridge when a test set
	// it (SetGatewayBridge); nil: made as docs/SWARM.md says.
	GatewayBridge *state.Network `json:"gatewayBridge,omitempty"`
}

func newFileState() *fileState {
	return &fileState{
		Format: fileFormat, Version: fileVersion,
		Networks: map[string]*Network{}, Containers: map[string]*Container{}, Volumes: map[string]*Volume{},
	}
}

// Open returns an engine whose state lives in the JSON file at path: read
// now if the file exists (a missing file is an empty engine) and written
// after every mutating call. One moat process at a time may use a file.
func Open(path string) (*Engine, error) {
	e := New()
	e.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fake engine: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("fake engine %s: %w", path, err)
	}
	e.st = st
	return e, nil
}

func decodeState(data []byte) (*fileState, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st fileState
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("invalid state file: %w", err)
	}
	if st.Format != fileFormat || st.Version != fileVersion {
		return nil, fmt.Errorf("invalid state file: format %q version %d, want %q version %d", st.Format, st.Version, fileFormat, fileVersion)
	}
	if st.Networks == nil {
		st.Networks = map[string]*Network{}
	}
	if st.Containers == nil {
		st.Containers = map[string]*Container{}
	}
	if st.Volumes == nil {
		st.Volumes = map[string]*Volume{}
	}
	// Keys are the names; fill or check them so a hand-written file can
	// leave the name out of each entry.
	for k, n := range st.Networks {
		if n == nil || (n.Name != "" && n.Name != k) || n.ID == "" {
			return nil, fmt.Errorf("invalid state file: network %q: needs an id, and a name equal to its key", k)
		}
		n.Name = k
	}
	for k, c := range st.Containers {
		if c == nil || (c.Name != "" && c.Name != k) || c.ID == "" || c.State == "" {
			return nil, fmt.Errorf("invalid state file: container %q: needs an id and a state, and a name equal to its key", k)
		}
		c.Name = k
		if c.Networks == nil {
			c.Networks = map[string][]string{}
		}
		for n := range c.Networks {
			if _, ok := st.Networks[n]; !ok {
				return nil, fmt.Errorf("invalid state file: container %q is attached to unknown network %q", k, n)
			}
		}
	}
	for k, v := range st.Volumes {
		if v == nil || (v.Name != "" && v.Name != k) {
			return nil, fmt.Errorf("invalid state file: volume %q: name must equal its key", k)
		}
		v.Name = k
	}
	for k, x := range st.Secrets {
		if x == nil || (x.Name != "" && x.Name != k) || x.ID == "" {
			return nil, fmt.Errorf("invalid state file: secret %q: needs an id, and a name equal to its key", k)
		}
		x.Name = k
	}
	return &st, nil
}

// Save writes the state to the file the engine was opened from (a no-op
// for an in-memory engine). Mutating calls save on their own; Save is for
// changes made through helpers by a caller that wants them on disk now.
func (e *Engine) Save() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.saveLocked()
}

// saveLocked writes atomically (temp file and rename), so that a moat
// process killed mid-write leaves the previous state, not half a file.
func (e *Engine) saveLocked() error {
	if e.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(e.st, "", "  ")
	if err != nil {
		return fmt.Errorf("fake engine: encode state: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(e.path), ".fake-engine-*")
	if err != nil {
		return fmt.Errorf("fake engine: save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("fake engine: save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fake engine: save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), e.path); err != nil {
		return fmt.Errorf("fake engine: save state: %w", err)
	}
	return nil
}

// helper runs a human action under the lock and saves it.
func (e *Engine) helper(fn func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	return e.saveLocked()
}

// Stop marks a container exited, as `docker stop` by hand would.
func (e *Engine) Stop(name string) error {
	return e.helper(func() error {
		c := e.st.container(name)
		if c == nil {
			return fmt.Errorf("fake engine: stop %s: no such container", name)
		}
		c.State = "exited"
		e.publishLocked("container", "die", c.Name)
		return nil
	})
}

// SetState sets any container state ("paused", "dead", ...).
func (e *Engine) SetState(name, st string) error {
	return e.helper(func() error {
		c := e.st.container(name)
		if c == nil {
			return fmt.Errorf("fake engine: set state of %s: no such container", name)
		}
		c.State = st
		return nil
	})
}

// RemoveNetworkByHand removes a network, as `docker network rm` would:
// refused while a running container is attached; stopped ones keep an
// endpoint that points at the removed network's id.
func (e *Engine) RemoveNetworkByHand(name string) error {
	return e.helper(func() error {
		n := e.st.network(name)
		if n == nil {
			return fmt.Errorf("fake engine: remove network %s: no such network", name)
		}
		return e.st.removeNetwork(n)
	})
}

// Remove deletes a container whatever its labels, as `docker rm -f` by
// hand would.
func (e *Engine) Remove(name string) error {
	return e.helper(func() error {
		c := e.st.container(name)
		if c == nil {
			return fmt.Errorf("fake engine: remove %s: no such container", name)
		}
		delete(e.st.Containers, c.Name)
		e.publishLocked("container", "destroy", c.Name)
		return nil
	})
}

// ConnectUnmanaged attaches any container to any network by hand (drift:
// an operator's `docker network connect`).
func (e *Engine) ConnectUnmanaged(network, container string) error {
	return e.helper(func() error {
		return e.connectLocked(network, container, nil)
	})
}

// AddContainer adds a running container with the given labels, attached
// to the given (existing) networks, without going through moat.
func (e *Engine) AddContainer(name, image string, labels map[string]string, networks ...string) (string, error) {
	var id string
	err := e.helper(func() error {
		if _, ok := e.st.Containers[name]; ok || name == "" {
			return fmt.Errorf("fake engine: add container %q: name empty or in use", name)
		}
		c := &Container{ID: e.newID("container"), Name: name, Image: image, State: "running",
			Labels: maps.Clone(labels), Networks: map[string][]string{}}
		for _, n := range networks {
			nw := e.st.network(n)
			if nw == nil {
				return fmt.Errorf("fake engine: add container %s: no such network %s", name, n)
			}
			c.Networks[nw.Name] = nil
			e.publishLocked("network", "connect", nw.Name)
		}
		e.st.Containers[name] = c
		id = c.ID
		return nil
	})
	return id, err
}

// AddUnmanagedContainer adds a running container without moat labels.
func (e *Engine) AddUnmanagedContainer(name, image string, networks ...string) (string, error) {
	return e.AddContainer(name, image, nil, networks...)
}

// AddNetwork adds a network without going through moat (e.g. an unmanaged
// one, or one of another instance).
func (e *Engine) AddNetwork(spec state.NetworkSpec) (string, error) {
	var id string
	err := e.helper(func() error {
		if _, ok := e.st.Networks[spec.Name]; ok || spec.Name == "" {
			return fmt.Errorf("fake engine: add network %q: name empty or in use", spec.Name)
		}
		id = e.newID("network")
		e.st.Networks[spec.Name] = &Network{ID: id, Name: spec.Name, Driver: spec.Driver, Internal: spec.Internal,
			Subnet: spec.Subnet, Gateway: spec.Gateway, Labels: maps.Clone(spec.Labels)}
		return nil
	})
	return id, err
}

// SetImages restricts the images the engine has; with no arguments every
// image exists again.
func (e *Engine) SetImages(images ...string) error {
	return e.helper(func() error {
		e.st.Images = slices.Clone(images)
		return nil
	})
}

// SetImageID points ref at image id, like docker tag moving a tag:
// containers created from ref before keep the old id.
func (e *Engine) SetImageID(ref, id string) error {
	return e.helper(func() error {
		if e.st.ImageIDs == nil {
			e.st.ImageIDs = map[string]string{}
		}
		e.st.ImageIDs[ref] = id
		return nil
	})
}

// Container returns a copy of a container by name or id.
func (e *Engine) Container(ref string) (Container, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.st.container(ref)
	if c == nil {
		return Container{}, false
	}
	out := *c
	out.Labels = maps.Clone(c.Labels)
	out.Networks = make(map[string][]string, len(c.Networks))
	for k, v := range c.Networks {
		out.Networks[k] = slices.Clone(v)
	}
	if c.Spec != nil {
		out.Spec = cloneSpec(*c.Spec)
	}
	return out, true
}

// Network returns a copy of a network by name or id.
func (e *Engine) Network(ref string) (Network, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.st.network(ref)
	if n == nil {
		return Network{}, false
	}
	out := *n
	out.Labels = maps.Clone(n.Labels)
	out.Options = maps.Clone(n.Options)
	return out, true
}

// HasVolume reports whether a volume exists.
func (e *Engine) HasVolume(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.st.Volumes[name]
	return ok
}
