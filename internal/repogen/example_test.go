package repogen_test

import (
	"os"
	"testing"
)

// The example config repository lives in examples/platform, which holds no
// Go code; its strict-decoding and consistency test lives here, next to the
// same checks for generated repositories.
const exampleDir = "../../examples/platform"

func TestExamplePlatformIsConsistent(t *testing.T) {
	r := decodeStrict(t, os.DirFS(exampleDir))
	checkConsistent(t, r)

	containers := 0
	for _, a := range r.Apps {
		containers += a.Replicas
	}
	if len(r.Tenants) != 3 || len(r.Apps) != 9 || containers != 9 {
		t.Errorf("example has %d tenants, %d apps, %d app containers; the README says 3, 9, 9",
			len(r.Tenants), len(r.Apps), containers)
	}
	for _, a := range r.Apps {
		for _, s := range a.Secrets {
			tenant := r.owner[a]
			if _, err := os.Stat("../../examples/platform-secrets/" + tenant + "/" + s); err != nil {
				t.Errorf("app %s/%s: secret %s has no demo value: %v", tenant, a.Name, s, err)
			}
		}
	}
}
