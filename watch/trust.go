package watch

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing/object"
	"gopkg.in/yaml.v3"
)

// Trust is path-scoped commit signing trust: platform keys may sign any
// change; a tenant's keys may sign changes under tenants/<tenant>/ only.
// It is read from a file on the host, never from the repository it
// judges (a repository must not be able to widen its own trust).
//
// The file (YAML; key paths relative to it):
//
//	platform:
//	  - keys/platform-team.asc
//	tenants:
//	  acme:
//	    - keys/acme.asc
type Trust struct {
	keys []trustedKey
}

type trustedKey struct {
	armored string
	file    string
	tenant  string // "" for a platform key
	ids     []string
}

type trustFile struct {
	Platform []string            `yaml:"platform"`
	Tenants  map[string][]string `yaml:"tenants"`
}

// LoadTrust reads a trust file and its keys.
func LoadTrust(file string) (*Trust, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	var tf trustFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("trust %s: %w", file, err)
	}
	t := &Trust{}
	add := func(tenant, rel string) error {
		p := rel
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("trust %s: key: %w", file, err)
		}
		ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(b)))
		if err != nil {
			return fmt.Errorf("trust %s: key %s: not an armored OpenPGP public key: %w", file, rel, err)
		}
		k := trustedKey{armored: string(b), file: rel, tenant: tenant}
		for _, e := range ents {
			k.ids = append(k.ids, e.PrimaryKey.KeyIdString())
			for name := range e.Identities {
				k.ids = append(k.ids, name)
			}
		}
		t.keys = append(t.keys, k)
		return nil
	}
	for _, k := range tf.Platform {
		if err := add("", k); err != nil {
			return nil, err
		}
	}
	tenants := make([]string, 0, len(tf.Tenants))
	for name := range tf.Tenants {
		tenants = append(tenants, name)
	}
	slices.Sort(tenants)
	for _, name := range tenants {
		if name == "" || strings.ContainsAny(name, "/\\.") {
			return nil, fmt.Errorf("trust %s: tenant %q: not a tenant name", file, name)
		}
		for _, k := range tf.Tenants[name] {
			if err := add(name, k); err != nil {
				return nil, err
			}
		}
	}
	if len(t.keys) == 0 {
		return nil, fmt.Errorf("trust %s: no keys", file)
	}
	// Platform keys first: a key listed both ways has the wider scope.
	slices.SortStableFunc(t.keys, func(a, b trustedKey) int { return strings.Compare(a.tenant, b.tenant) })
	return t, nil
}

// signer finds the trusted key that signed c.
func (t *Trust) signer(c *object.Commit) (*trustedKey, string, error) {
	if strings.TrimSpace(c.PGPSignature) == "" {
		return nil, "", fmt.Errorf("commit %s (%s) is not signed", short(c.Hash.String()), c.Author.Email)
	}
	for i := range t.keys {
		k := &t.keys[i]
		if ent, err := c.Verify(k.armored); err == nil {
			name := k.file
			ids := slices.Sorted(maps.Keys(ent.Identities))
			if len(ids) > 0 {
				name = ids[0]
			}
			return k, name, nil
		}
	}
	return nil, "", fmt.Errorf("commit %s (%s) has a signature that no trusted key verifies", short(c.Hash.String()), c.Author.Email)
}

// verifyFirst: with nothing applied yet, the head must be signed by a
// platform key, which vouches for the whole tree.
func (t *Trust) verifyFirst(head *object.Commit, _ string) error {
	k, who, err := t.signer(head)
	if err == nil && k.tenant != "" {
		err = fmt.Errorf("commit %s is signed by %s, a key of tenant %s; the first revision moat applies must be signed by a platform key", short(head.Hash.String()), who, k.tenant)
	}
	if err != nil {
		return &RefusedError{Revision: head.Hash.String(), Reason: err.Error()}
	}
	return nil
}

// verifyRange checks every commit of a range against the files it changes
// (a merge against its first parent). The first failure refuses the whole
// range.
func (t *Trust) verifyRange(commits []*object.Commit, sub, head string) error {
	for _, c := range commits {
		if err := t.verifyCommit(c, sub); err != nil {
			return &RefusedError{Revision: head, Reason: err.Error() + "; nothing of the range is applied"}
		}
	}
	return nil
}

func (t *Trust) verifyCommit(c *object.Commit, sub string) error {
	k, who, err := t.signer(c)
	if err != nil {
		return err
	}
	if k.tenant == "" {
		return nil
	}
	files, err := changedFiles(c)
	if err != nil {
		return err
	}
	allowed := "tenants/" + k.tenant + "/"
	for _, f := range files {
		rel := f
		if sub != "" {
			var ok bool
			if rel, ok = strings.CutPrefix(f, sub+"/"); !ok {
				continue // outside the configuration folder: moat never reads it
			}
		}
		if !strings.HasPrefix(path.Clean(rel), allowed) {
			return fmt.Errorf("commit %s is signed by %s (key of tenant %s), which may not change %s (only %s)", short(c.Hash.String()), who, k.tenant, f, allowed)
		}
	}
	return nil
}

// changedFiles lists the paths c changes against its first parent (all
// of its files for a root commit), both sides of a rename.
func changedFiles(c *object.Commit) ([]string, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", short(c.Hash.String()), err)
	}
	var parentTree *object.Tree
	if c.NumParents() > 0 {
		p, err := c.Parent(0)
		if err != nil {
			return nil, fmt.Errorf("parent of %s: %w", short(c.Hash.String()), err)
		}
		if parentTree, err = p.Tree(); err != nil {
			return nil, fmt.Errorf("tree of %s: %w", short(p.Hash.String()), err)
		}
	}
	changes, err := object.DiffTree(parentTree, tree)
	if err != nil {
		return nil, fmt.Errorf("diff of %s: %w", short(c.Hash.String()), err)
	}
	var out []string
	for _, ch := range changes {
		for _, n := range []string{ch.From.Name, ch.To.Name} {
			if n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
