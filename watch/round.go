package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// Status is what /status shows.
type Status struct {
	Source   string `json:"source"`
	Instance string `json:"instance,omitempty"`
	// Engine is the engine the revision in force chose (docker, swarm).
	Engine          string           `json:"engine,omitempty"`
	Ready           bool             `json:"ready"`
	EngineReachable bool             `json:"engineReachable"`
	LastApplied     *AppliedRevision `json:"lastApplied,omitempty"`
	LastSeen        *Seen            `json:"lastSeen,omitempty"`
	LastPlan        *PlanInfo        `json:"lastPlan,omitempty"`
	DriftCorrected  int              `json:"driftCorrected"`
	LastDriftAt     time.Time        `json:"lastDriftAt,omitzero"`
	Rounds          int              `json:"rounds"`
	LastResult      Result           `json:"lastResult,omitempty"`
	LastError       string           `json:"lastError,omitempty"`
	Lock            LockInfo         `json:"lock"`
	NextResync      time.Time        `json:"nextResync,omitzero"`
}

// AppliedRevision is the revision in force.
type AppliedRevision struct {
	Revision string    `json:"revision"`
	Summary  string    `json:"summary,omitempty"`
	At       time.Time `json:"at"`
}

// Seen is the newest revision the source gave.
type Seen struct {
	Revision    string    `json:"revision"`
	Summary     string    `json:"summary,omitempty"`
	At          time.Time `json:"at"`
	Valid       bool      `json:"valid"`
	Diagnostics []string  `json:"diagnostics,omitempty"`
	Refused     string    `json:"refused,omitempty"`
}

// PlanInfo summarises the last plan computed.
type PlanInfo struct {
	Revision   string         `json:"revision"`
	At         time.Time      `json:"at"`
	Summary    string         `json:"summary"`
	Operations map[string]int `json:"operations"`
	Took       string         `json:"took"`
}

// maxDiagnostics shown in status and logs for a refused revision.
const maxDiagnostics = 20

// Round runs one reconcile: revision -> validate -> compile -> observe ->
// plan -> guard -> apply. An invalid or refused new revision is never
// applied: the last good one stays in force and drift is still reverted
// against it.
func (w *Watcher) Round(ctx context.Context, reasons map[string]bool) Result {
	start := time.Now()
	res, err := w.round(ctx, reasons)
	took := time.Since(start)
	w.m.Reconciles.WithLabelValues(string(res)).Inc()
	w.m.Duration.WithLabelValues(string(res)).Observe(took.Seconds())
	if res == Failed {
		w.failures++
	} else {
		w.failures = 0
	}
	w.update(func(s *Status) {
		s.Rounds++
		s.LastResult = res
		if err != nil {
			s.LastError = err.Error()
		} else if res != Failed {
			s.LastError = ""
		}
	})
	if err != nil && res == Failed {
		w.log.Error("reconcile failed", "err", err, "took", took.Round(time.Millisecond))
	}
	return res
}

func (w *Watcher) round(ctx context.Context, reasons map[string]bool) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.RoundTimeout)
	defer cancel()
	verdict := Converged // what the newest revision earned, if not applied
	var verdictErr error

	// 1. The revision. Engine events alone never fetch: drift is
	// reverted against what is in force.
	onlyEvents := len(reasons) > 0 && !reasons["start"] && !reasons["poll"] && !reasons["webhook"] && !reasons["source"] && !reasons["resync"]
	if !onlyEvents || w.current == nil {
		rev, err := w.opts.Source.Fetch(ctx, w.lastApplied)
		var re *RefusedError
		switch {
		case errors.As(err, &re):
			verdict, verdictErr = Refused, re
			w.noteRefused(re.Revision, "", re.Reason)
		case err != nil:
			verdict, verdictErr = Failed, err
		default:
			pollOnly := reasons["poll"] && len(reasons) == 1
			if pollOnly && w.current != nil && rev.ID == w.current.ID && w.failures == 0 && w.good != nil && w.good.rev.ID == rev.ID {
				return Converged, nil // nothing new upstream: the resync and events cover drift
			}
			w.current = rev
		}
	}

	// 2. Validate the newest revision (once per revision id).
	target := w.good
	if rev := w.current; rev != nil && (w.good == nil || rev.ID != w.good.rev.ID) && verdict != Refused {
		entry, ok := w.repos[rev.ID]
		if !ok {
			repo, err := controller.Validate(rev.FS)
			entry = repoEntry{repo: repo, err: err}
			if len(w.repos) >= 8 {
				clear(w.repos)
			}
			w.repos[rev.ID] = entry
		}
		var inv *controller.InvalidError
		switch {
		case errors.As(entry.err, &inv):
			verdict, verdictErr = Invalid, entry.err
			w.noteInvalid(rev, inv)
		case entry.err != nil:
			verdict, verdictErr = Failed, entry.err
		case w.refused[rev.ID] != "":
			verdict, verdictErr = Refused, errors.New(w.refused[rev.ID])
		default:
			target = &revisionTarget{rev: rev, repo: entry.repo}
			w.noteSeen(rev, true, nil, "")
		}
	}
	if target == nil {
		if verdict == Converged {
			verdict = Failed
		}
		return verdict, verdictErr
	}

	res, err := w.reconcile(ctx, target)
	if errors.Is(err, errGuard) && target != w.good {
		// The new revision's plan was refused: remember it (not retried
		// until the revision changes) and keep the old one in force.
		w.refused[target.rev.ID] = err.Error()
		w.noteRefused(target.rev.ID, target.rev.Summary, err.Error())
		verdict, verdictErr = Refused, err
		if w.good == nil {
			return verdict, verdictErr
		}
		res, err = w.reconcile(ctx, w.good)
	} else if errors.Is(err, errGuard) {
		w.noteRefused(target.rev.ID, target.rev.Summary, err.Error())
		return Refused, err
	}
	if err != nil {
		return Failed, err
	}
	if verdict != Converged {
		return verdict, verdictErr
	}
	return res, nil
}

// reconcile brings the engine to target: compile, observe, plan, guard,
// apply.
func (w *Watcher) reconcile(ctx context.Context, t *revisionTarget) (Result, error) {
	tg, err := controller.Compile(t.repo, w.opts.Load)
	if err != nil {
		return Failed, fmt.Errorf("compile %s: %w", short(t.rev.ID), err)
	}
	instance := tg.Desired.Instance
	kind := tg.Desired.Engine
	if kind == "" {
		kind = state.EngineDocker
	}
	if instance != w.locked || (w.opts.Connect != nil && kind != w.connected) {
		// The lock is per instance: known only once a revision is valid.
		if w.locked != "" && instance != w.locked {
			w.fatal = fmt.Errorf("revision %s renames the instance from %s to %s; restart moat watch to follow it", short(t.rev.ID), w.locked, instance)
			return Failed, w.fatal
		}
		if w.opts.Connect != nil {
			if w.connected != "" {
				w.log.Info("the platform chooses another engine; reconnecting", "from", w.connected, "to", kind, "revision", short(t.rev.ID))
			}
			eng, err := w.opts.Connect(instance, kind)
			var held interface{ Held() bool }
			if errors.As(err, &held) && held.Held() {
				w.fatal = err
				return Failed, err
			}
			if err != nil {
				w.update(func(s *Status) { s.EngineReachable = false })
				return Failed, err
			}
			w.setEngine(eng)
			w.connected = kind
		}
		w.locked = instance
	}
	w.update(func(s *Status) { s.Instance, s.Engine = instance, kind })
	eng := w.engine()
	fw := w.opts.Firewall
	if h, ok := eng.(interface{ HostFirewall() engine.Firewall }); ok && fw == nil {
		fw = h.HostFirewall()
	}
	obs, err := controller.Observe(ctx, eng, fw, instance, controller.NeedVolumes(tg.Repo))
	if err != nil {
		if errors.Is(err, engine.ErrUnreachable) || ctx.Err() == nil {
			w.update(func(s *Status) { s.EngineReachable = false })
		}
		return Failed, fmt.Errorf("observe live state: %w", err)
	}
	w.update(func(s *Status) { s.EngineReachable = true })
	start := time.Now()
	p, err := controller.Plan(tg, obs, controller.PlanOptions{})
	if err != nil {
		return Failed, fmt.Errorf("plan %s: %w", short(t.rev.ID), err)
	}
	w.update(func(s *Status) {
		s.LastPlan = &PlanInfo{Revision: t.rev.ID, At: time.Now().UTC(), Summary: p.Summary().String(), Operations: planCounts(p), Took: time.Since(start).String()}
	})
	if err := reconcile.Guard(p, obs, reconcile.GuardOptions{AllowMassDelete: w.opts.AllowMassDelete}); err != nil {
		return Refused, fmt.Errorf("%w: revision %s: %w", errGuard, short(t.rev.ID), err)
	}
	drift := w.good != nil && w.good.rev.ID == t.rev.ID && w.lastApplied == t.rev.ID
	result := Converged
	if !p.Empty() {
		result = Applied
		log := w.log.With("revision", short(t.rev.ID))
		results, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{
			AllowMassDelete: w.opts.AllowMassDelete, Parallel: w.opts.Parallel, Log: log, Firewall: fw,
		})
		n := w.count(results, drift)
		if err != nil {
			return Failed, fmt.Errorf("apply %s: %w", short(t.rev.ID), err)
		}
		if drift && n > 0 {
			w.update(func(s *Status) { s.DriftCorrected += n; s.LastDriftAt = time.Now().UTC() })
		}
	}
	w.good = t
	if w.lastApplied != t.rev.ID {
		w.lastApplied = t.rev.ID
		w.persist(t.rev.ID)
		w.log.Info("revision applied", "revision", short(t.rev.ID), "summary", t.rev.Summary)
	}
	now := time.Now().UTC()
	w.m.LastSuccess.Set(float64(now.UnixNano()) / 1e9)
	w.m.RevisionInfo.DeletePartialMatch(map[string]string{"state": "applied"})
	w.m.RevisionInfo.WithLabelValues("applied", t.rev.ID).Set(1)
	w.update(func(s *Status) {
		if s.LastApplied == nil || s.LastApplied.Revision != t.rev.ID || result == Applied {
			s.LastApplied = &AppliedRevision{Revision: t.rev.ID, Summary: t.rev.Summary, At: now}
		}
	})
	return result, nil
}

// count records the outcome of each operation; it returns how many
// changed something.
func (w *Watcher) count(results []apply.Result, drift bool) int {
	n := 0
	for _, r := range results {
		w.m.Operations.WithLabelValues(string(r.Op.Verb), opOutcome(r)).Inc()
		if r.Outcome != apply.Failed && r.Outcome != apply.Skipped && r.Outcome != apply.Reported {
			n++
			if drift {
				w.m.Drift.Inc()
			}
		}
	}
	return n
}

func (w *Watcher) persist(id string) {
	if w.opts.StateFile == "" {
		return
	}
	tmp := w.opts.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err == nil {
		if err = os.WriteFile(tmp, []byte(id+"\n"), 0o600); err == nil {
			err = os.Rename(tmp, w.opts.StateFile)
		}
		if err != nil {
			w.log.Warn("cannot keep the applied revision", "file", w.opts.StateFile, "err", err)
		}
	}
}

func (w *Watcher) noteSeen(rev *Revision, valid bool, diags []string, refused string) {
	w.m.RevisionInfo.DeletePartialMatch(map[string]string{"state": "seen"})
	w.m.RevisionInfo.WithLabelValues("seen", rev.ID).Set(1)
	w.update(func(s *Status) {
		if s.LastSeen != nil && s.LastSeen.Revision == rev.ID && s.LastSeen.Valid == valid && s.LastSeen.Refused == refused {
			return
		}
		s.LastSeen = &Seen{Revision: rev.ID, Summary: rev.Summary, At: time.Now().UTC(), Valid: valid, Diagnostics: diags, Refused: refused}
	})
}

func (w *Watcher) noteInvalid(rev *Revision, inv *controller.InvalidError) {
	ds := inv.Diagnostics.Sort()
	var lines []string
	for i, d := range ds {
		if i == maxDiagnostics {
			lines = append(lines, fmt.Sprintf("... and %d more", len(ds)-i))
			break
		}
		lines = append(lines, d.String())
	}
	w.noteSeen(rev, false, lines, "")
	if len(w.reported) > 256 {
		clear(w.reported)
	}
	if !w.reported[rev.ID] {
		w.reported[rev.ID] = true
		w.m.Invalid.Inc()
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		w.log.Error("revision invalid; the last good revision stays in force", "revision", short(rev.ID), "summary", rev.Summary,
			"problems", len(ds), "first", first, "in_force", short(w.lastApplied))
	}
}

func (w *Watcher) noteRefused(id, summary, reason string) {
	w.noteSeen(&Revision{ID: id, Summary: summary}, false, nil, reason)
	if !w.reported["refused:"+id] {
		w.reported["refused:"+id] = true
		w.m.Refused.Inc()
		w.log.Error("revision refused; the last good revision stays in force", "revision", short(id), "reason", reason, "in_force", short(w.lastApplied))
	}
}
