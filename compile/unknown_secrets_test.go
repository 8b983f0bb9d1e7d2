package compile

import (
	"slices"
	"testing"

	"github.com/moat-platform/moat/state"
)

// A plan made without the secret store (a pull-request check) differs from
// the host's only in the secrets part: the store's location is not hashed,
// so reconcile can tell "nothing but unknown secrets" from a real change.
func TestUnknownSecretsDiffersOnlyInSecretsPart(t *testing.T) {
	host := mustCompile(t, smallRepo(), testOptions())
	pr := mustCompile(t, smallRepo(), Options{UnknownSecrets: true})
	for i, c := range pr.Containers {
		h := host.Containers[i]
		changed := ChangedParts(h.Labels[state.LabelSpecParts], c.Labels[state.LabelSpecParts])
		if len(h.SecretDigests) > 0 {
			if !slices.Equal(changed, []string{"secrets"}) {
				t.Errorf("%s: changed parts %v, want [secrets]", c.Name, changed)
			}
			for n, d := range c.SecretDigests {
				if d != UnknownDigest {
					t.Errorf("%s: digest of %s is %q, want %q", c.Name, n, d, UnknownDigest)
				}
			}
		} else if h.Labels[state.LabelSpecHash] != c.Labels[state.LabelSpecHash] {
			t.Errorf("%s: hash differs though it has no secrets (%v)", c.Name, changed)
		}
	}
}

// Moving the secret store on the host does not change any spec hash.
func TestSecretStoreLocationNotHashed(t *testing.T) {
	a := mustCompile(t, smallRepo(), testOptions())
	opts := testOptions()
	opts.SecretsDir = "/elsewhere/secrets"
	b := mustCompile(t, smallRepo(), opts)
	for i := range a.Containers {
		if a.Containers[i].Labels[state.LabelSpecHash] != b.Containers[i].Labels[state.LabelSpecHash] {
			t.Errorf("%s: hash depends on the store's location", a.Containers[i].Name)
		}
	}
}
