package reconcile

import (
	"cmp"
	"fmt"
	"slices"
)

// Groups of the fixed plan order (after Flux ssa's kind order): what
// others depend on comes first, removals last, so that a plan reads top to
// bottom roughly the way it runs. Execution order is the DAG's, not this.
const (
	groupPeer            = iota // Weave peers: the mesh before its LANs
	groupNetworkCreate          // creates and both halves of a replace
	groupHostRules              // ensures of host protection
	groupVolumeCreate           //
	groupSecretCreate           // Swarm secret versions, before the services that mount them
	groupContainer              // everything but container removals
	groupContainerRemove        //
	groupSecretRemove           // after every container op: none mounts it any more
	groupNetworkRemove          //
	groupVolumeRemove           //
	groupHostRulesRemove        // after the LAN is gone
)

func group(op *Operation) int {
	switch op.Resource.Kind {
	case KindPeer:
		return groupPeer
	case KindNetwork:
		if op.Action == Delete {
			return groupNetworkRemove
		}
		return groupNetworkCreate
	case KindVolume:
		if op.Action == Delete || op.Verb == VerbKeepVolume {
			return groupVolumeRemove
		}
		return groupVolumeCreate
	case KindHostRules:
		if op.Action == Delete {
			return groupHostRulesRemove
		}
		return groupHostRules
	case KindSecret:
		if op.Action == Delete {
			return groupSecretRemove
		}
		return groupSecretCreate
	}
	if op.Action == Delete {
		return groupContainerRemove
	}
	return groupContainer
}

// verbRank orders the ops of one resource the way they run: a replaced
// network's removal before its creation, a container's disconnects before
// its (re)create, start and connects.
var verbRank = map[Verb]int{
	VerbRemoveNetwork: 0,
	VerbCreateNetwork: 1,
	VerbCreateVolume:  1,
	VerbUnpause:       2,
	VerbDisconnect:    2,
	VerbRecreate:      3,
	VerbUpdate:        3,
	VerbCreate:        3,
	VerbConnect:       4,
	VerbStart:         5,
	VerbReport:        6,
	VerbRemove:        7,
	VerbRemoveVolume:  7,
	VerbKeepVolume:    7,
	VerbEnsureRules:   1,
	VerbRemoveRules:   7,
	VerbConnectPeer:   1,
	VerbForgetPeer:    7,
	VerbCreateSecret:  1,
	VerbRemoveSecret:  7,
}

func compareOps(a, b *Operation) int {
	return cmp.Or(
		cmp.Compare(group(a), group(b)),
		cmp.Compare(a.Resource.Name, b.Resource.Name),
		cmp.Compare(verbRank[a.Verb], verbRank[b.Verb]),
		cmp.Compare(a.Network, b.Network),
		cmp.Compare(a.ID, b.ID),
	)
}

// finish puts a computed plan into its canonical form: operations in the
// fixed order, dependencies sorted and unique; and checks that IDs are
// unique and every dependency exists (a bug here would hang or misorder
// apply, so it is an error rather than a surprise later).
func finish(p *Plan) error {
	// Sort pointers, not the large Operation values.
	ptrs := make([]*Operation, len(p.Operations))
	for i := range p.Operations {
		ptrs[i] = &p.Operations[i]
	}
	slices.SortFunc(ptrs, compareOps)
	sorted := make([]Operation, len(ptrs))
	for i, op := range ptrs {
		sorted[i] = *op
	}
	p.Operations = sorted
	ids := make(map[string]bool, len(p.Operations))
	for i := range p.Operations {
		op := &p.Operations[i]
		if ids[op.ID] {
			return fmt.Errorf("reconcile: internal error: operation %s planned twice", op.ID)
		}
		ids[op.ID] = true
		if len(op.DependsOn) > 1 {
			slices.Sort(op.DependsOn)
			op.DependsOn = slices.Compact(op.DependsOn)
		}
	}
	for i := range p.Operations {
		for _, d := range p.Operations[i].DependsOn {
			if !ids[d] {
				return fmt.Errorf("reconcile: internal error: %s depends on unknown %s", p.Operations[i].ID, d)
			}
		}
	}
	return nil
}
