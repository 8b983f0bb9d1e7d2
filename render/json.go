package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// FormatVersion is the version of the JSON plan format. Bump it on any
// change that an older moat would misread; ReadPlan refuses other versions.
//
// Swarm did not bump it: a single-host plan is written exactly as before
// (engine is omitted when empty), and a Swarm plan always carries
// "engine": "swarm", a field an older moat's strict reader refuses (as it
// refuses the new verbs and spec fields), so no older moat can misread one.
const FormatVersion = "1"

// planFile is the JSON plan document and the saved-plan file.
type planFile struct {
	FormatVersion  string                `json:"format_version"`
	Instance       string                `json:"instance"`
	Revision       string                `json:"revision"`
	Fingerprint    string                `json:"fingerprint"`
	SecretsUnknown bool                  `json:"secrets_unknown,omitempty"`
	Engine         string                `json:"engine,omitempty"`
	Summary        reconcile.Summary     `json:"summary"`
	Operations     []reconcile.Operation `json:"operations"`
}

// JSON writes the plan in the versioned format, indented, one document.
func JSON(w io.Writer, p *reconcile.Plan) error {
	f := planFile{
		FormatVersion:  FormatVersion,
		Instance:       p.Instance,
		Revision:       p.Revision,
		Fingerprint:    p.Fingerprint,
		SecretsUnknown: p.SecretsUnknown,
		Engine:         p.Engine,
		Summary:        p.Summary(),
		Operations:     p.Operations,
	}
	if f.Operations == nil {
		f.Operations = []reconcile.Operation{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Causes and names are shown as they are, not as \u003c escapes.
	enc.SetEscapeHTML(false)
	return enc.Encode(f)
}

// maxPlanFile bounds what ReadPlan reads: a plan of 10,000 containers
// with full specs is a few tens of MB.
const maxPlanFile = 256 << 20

// ReadPlan reads a plan written by JSON, strictly: the format version must
// match, unknown fields are refused, every operation must be well formed
// and the summary must match the operations (a hand-edited plan is refused
// rather than half-applied). Apply re-checks the fingerprint against the
// live state; that is not ReadPlan's job.
func ReadPlan(r io.Reader) (*reconcile.Plan, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPlanFile+1))
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if len(b) > maxPlanFile {
		return nil, fmt.Errorf("read plan: larger than %d bytes", maxPlanFile)
	}
	// The version first, leniently, so that a plan of another version
	// gets that message rather than one about a field it does not know.
	var head struct {
		FormatVersion *string `json:"format_version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&head); err != nil {
		return nil, fmt.Errorf("read plan: not a moat plan file: %w", err)
	}
	if head.FormatVersion == nil {
		return nil, errors.New("read plan: not a moat plan file: no format_version")
	}
	if *head.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("read plan: format_version %q is not supported by this moat (it reads %q): recompute the plan with this version", *head.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f planFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if dec.More() {
		return nil, errors.New("read plan: trailing data after the plan")
	}
	p := &reconcile.Plan{Instance: f.Instance, Revision: f.Revision, Fingerprint: f.Fingerprint, SecretsUnknown: f.SecretsUnknown, Engine: f.Engine, Operations: f.Operations}
	if p.Operations == nil {
		p.Operations = []reconcile.Operation{}
	}
	if err := check(p); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if got := p.Summary(); got != f.Summary {
		return nil, fmt.Errorf("read plan: summary %+v does not match the operations (%+v): the file was edited", f.Summary, got)
	}
	return p, nil
}

// verbs maps every verb to the kind it acts on and the actions it may
// carry; anything else in a file is refused.
var verbs = map[reconcile.Verb]struct {
	kind    reconcile.Kind
	actions []reconcile.Action
}{
	reconcile.VerbCreateNetwork: {reconcile.KindNetwork, []reconcile.Action{reconcile.Create, reconcile.Replace}},
	reconcile.VerbRemoveNetwork: {reconcile.KindNetwork, []reconcile.Action{reconcile.Delete, reconcile.Replace}},
	reconcile.VerbCreateVolume:  {reconcile.KindVolume, []reconcile.Action{reconcile.Create}},
	reconcile.VerbRemoveVolume:  {reconcile.KindVolume, []reconcile.Action{reconcile.Delete}},
	reconcile.VerbCreate:        {reconcile.KindContainer, []reconcile.Action{reconcile.Create}},
	reconcile.VerbRecreate:      {reconcile.KindContainer, []reconcile.Action{reconcile.Replace}},
	reconcile.VerbRemove:        {reconcile.KindContainer, []reconcile.Action{reconcile.Delete}},
	reconcile.VerbStart:         {reconcile.KindContainer, []reconcile.Action{reconcile.Update}},
	reconcile.VerbUnpause:       {reconcile.KindContainer, []reconcile.Action{reconcile.Update}},
	reconcile.VerbUpdate:        {reconcile.KindContainer, []reconcile.Action{reconcile.Update}},
	reconcile.VerbKeepVolume:    {reconcile.KindVolume, []reconcile.Action{reconcile.Report}},
	reconcile.VerbEnsureRules:   {reconcile.KindHostRules, []reconcile.Action{reconcile.Create, reconcile.Update}},
	reconcile.VerbRemoveRules:   {reconcile.KindHostRules, []reconcile.Action{reconcile.Delete}},
	reconcile.VerbCreateSecret:  {reconcile.KindSecret, []reconcile.Action{reconcile.Create}},
	reconcile.VerbRemoveSecret:  {reconcile.KindSecret, []reconcile.Action{reconcile.Delete}},
	reconcile.VerbConnect:       {reconcile.KindContainer, []reconcile.Action{reconcile.Update}},
	reconcile.VerbDisconnect:    {reconcile.KindContainer, []reconcile.Action{reconcile.Update}},
	reconcile.VerbReport:        {reconcile.KindContainer, []reconcile.Action{reconcile.Report}},
	reconcile.VerbConnectPeer:   {reconcile.KindPeer, []reconcile.Action{reconcile.Create}},
	reconcile.VerbForgetPeer:    {reconcile.KindPeer, []reconcile.Action{reconcile.Delete}},
}

// reportKinds are the kinds a report may be about: Weave drift is reported
// on peers and LANs too.
var reportKinds = map[reconcile.Kind]bool{reconcile.KindContainer: true, reconcile.KindNetwork: true, reconcile.KindPeer: true}

// check validates a decoded plan's operations.
func check(p *reconcile.Plan) error {
	if p.Instance == "" {
		return errors.New("no instance")
	}
	if p.Engine != "" && p.Engine != state.EngineSwarm {
		return fmt.Errorf("unknown engine %q", p.Engine)
	}
	ids := make(map[string]bool, len(p.Operations))
	for i := range p.Operations {
		op := &p.Operations[i]
		at := fmt.Sprintf("operation %d (%s)", i+1, op.ID)
		v, ok := verbs[op.Verb]
		if !ok {
			return fmt.Errorf("%s: unknown verb %q", at, op.Verb)
		}
		kindOK := op.Resource.Kind == v.kind || (op.Verb == reconcile.VerbReport && reportKinds[op.Resource.Kind])
		if !kindOK || op.Resource.Name == "" {
			return fmt.Errorf("%s: verb %s needs a %s resource with a name", at, op.Verb, v.kind)
		}
		okAction := false
		for _, a := range v.actions {
			okAction = okAction || a == op.Action
		}
		if !okAction {
			return fmt.Errorf("%s: action %q does not go with verb %s", at, op.Action, op.Verb)
		}
		if want := reconcile.OpID(op.Verb, op.Resource, op.Network); op.ID != want {
			return fmt.Errorf("%s: id should be %q", at, want)
		}
		if ids[op.ID] {
			return fmt.Errorf("%s: duplicate id", at)
		}
		ids[op.ID] = true
		switch {
		case op.Verb == reconcile.VerbCreateNetwork && op.NetworkSpec == nil,
			op.Verb == reconcile.VerbCreateVolume && op.VolumeSpec == nil,
			(op.Verb == reconcile.VerbCreate || op.Verb == reconcile.VerbRecreate || op.Verb == reconcile.VerbUpdate) && op.ContainerSpec == nil,
			op.Verb == reconcile.VerbCreateSecret && op.SecretSpec == nil,
			op.Verb == reconcile.VerbEnsureRules && op.HostRulesSpec == nil:
			return fmt.Errorf("%s: no spec to create from", at)
		case op.NetworkSpec != nil && op.NetworkSpec.Name != op.Resource.Name,
			op.VolumeSpec != nil && op.VolumeSpec.Name != op.Resource.Name,
			op.ContainerSpec != nil && op.ContainerSpec.Name != op.Resource.Name,
			op.SecretSpec != nil && op.SecretSpec.Name != op.Resource.Name,
			op.HostRulesSpec != nil && op.HostRulesSpec.Network != op.Resource.Name:
			return fmt.Errorf("%s: spec is for another resource", at)
		case (op.Verb == reconcile.VerbConnect || op.Verb == reconcile.VerbDisconnect ||
			(op.Verb == reconcile.VerbReport && op.Resource.Kind != reconcile.KindPeer)) && op.Network == "":
			return fmt.Errorf("%s: no network", at)
		}
	}
	for i := range p.Operations {
		for _, d := range p.Operations[i].DependsOn {
			if !ids[d] {
				return fmt.Errorf("operation %s depends on unknown operation %s", p.Operations[i].ID, d)
			}
		}
	}
	return nil
}
