package engine

import "errors"

// Errors shared by the engine implementations, so that callers (the
// executor, the CLI) can classify failures without knowing which engine
// produced them. Implementations wrap them with context; test with
// errors.Is.
var (
	// ErrNotManaged: a destructive call (or a create over an existing
	// name) hit an object without moat's managed labels for the instance.
	// moat never touches such objects.
	ErrNotManaged = errors.New("object not managed by moat")
	// ErrNotFound: the object an operation needs (a container to start, a
	// network to connect to, an image) does not exist.
	ErrNotFound = errors.New("not found")
)
