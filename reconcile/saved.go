package reconcile

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// savedDiffMax bounds how many differences a refusal lists.
const savedDiffMax = 20

// CompareSaved compares a saved plan (a file that travelled from a CI job
// to the host: input, like the config) with the plan moat computes now
// from the config and the live state, and returns every difference, named
// by operation id and field ("create-container:container/demo.acme.web.1:
// containerSpec.user: saved \"0:0\", computed \"10001:10001\""), sorted.
// Empty means identical: only then may the saved plan be applied. The
// comparison is over the plans' JSON form, so no field added later can be
// forgotten.
func CompareSaved(saved, fresh *Plan) []string {
	var diffs []string
	top := func(field string, s, f any) {
		if !reflect.DeepEqual(s, f) {
			diffs = append(diffs, fmt.Sprintf("plan %s: saved %s, computed %s", field, show(s), show(f)))
		}
	}
	top("instance", saved.Instance, fresh.Instance)
	top("revision", saved.Revision, fresh.Revision)
	top("fingerprint", saved.Fingerprint, fresh.Fingerprint)
	top("secrets_unknown", saved.SecretsUnknown, fresh.SecretsUnknown)
	top("engine", saved.Engine, fresh.Engine)
	s, f := opsByID(saved), opsByID(fresh)
	for _, id := range slices.Sorted(maps.Keys(s)) {
		if _, ok := f[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the saved plan, not in the computed one", id))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(f)) {
		so, ok := s[id]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: computed, missing from the saved plan", id))
			continue
		}
		for _, d := range diffValues("", toAny(so), toAny(f[id])) {
			diffs = append(diffs, id+": "+d)
		}
	}
	// Order is part of a plan too: the saved file could repeat an id.
	if len(saved.Operations) != len(fresh.Operations) && len(s) == len(f) {
		diffs = append(diffs, fmt.Sprintf("plan has %d operations, computed %d", len(saved.Operations), len(fresh.Operations)))
	}
	if len(diffs) > savedDiffMax {
		diffs = append(diffs[:savedDiffMax], fmt.Sprintf("... and %d more differences", len(diffs)-savedDiffMax))
	}
	return diffs
}

func opsByID(p *Plan) map[string]*Operation {
	m := make(map[string]*Operation, len(p.Operations))
	for i := range p.Operations {
		m[p.Operations[i].ID] = &p.Operations[i]
	}
	return m
}

// toAny is v in its JSON form (maps, slices, strings, float64, bool, nil).
func toAny(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return out
}

// diffValues names the leaves where s and f differ: "a.b", "a.b[2]",
// "labels[org.moat.spec-hash]".
func diffValues(path string, s, f any) []string {
	sm, sok := s.(map[string]any)
	fm, fok := f.(map[string]any)
	if sok && fok {
		keys := slices.Sorted(maps.Keys(sm))
		for k := range fm {
			if _, ok := sm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			p := k
			switch {
			case path != "" && strings.ContainsAny(k, ".[]/"):
				p = path + "[" + k + "]"
			case path != "":
				p = path + "." + k
			}
			out = append(out, diffValues(p, sm[k], fm[k])...)
		}
		return out
	}
	if reflect.DeepEqual(s, f) {
		return nil
	}
	if path == "" {
		path = "operation"
	}
	return []string{fmt.Sprintf("%s: saved %s, computed %s", path, show(s), show(f))}
}

// show prints a value compactly; long ones are cut.
func show(v any) string {
	if v == nil {
		return "nothing"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(data)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
