package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moat-platform/moat/watch"
)

func newStatus() *cobra.Command {
	var (
		addr   string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "status",
		Short: "Show what a running moat watch is doing (its /status endpoint)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 10*time.Second)
			defer cancel()
			url := addr
			if !strings.Contains(url, "://") {
				url = "http://" + url
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/status", nil)
			if err != nil {
				return withCode(exitError, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("is moat watch running and listening on %s? %w", addr, err))
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			if err != nil || resp.StatusCode != http.StatusOK {
				return withCode(exitInvalid, fmt.Errorf("status from %s: %s %v", addr, resp.Status, err))
			}
			if asJSON {
				_, err := c.OutOrStdout().Write(body)
				return err
			}
			var s watch.Status
			if err := json.Unmarshal(body, &s); err != nil {
				return withCode(exitInvalid, fmt.Errorf("status from %s: %w", addr, err))
			}
			printStatus(c.OutOrStdout(), &s, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:9797", "address moat watch listens on (its --listen)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return c
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.DateTime) + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
}

// printStatus writes the status for a human.
func printStatus(w io.Writer, s *watch.Status, now time.Time) {
	ready := "ready"
	if !s.Ready {
		ready = "NOT READY"
	}
	engine := "reachable"
	if !s.EngineReachable {
		engine = "UNREACHABLE"
	}
	if s.Engine != "" {
		engine = s.Engine + " " + engine
	}
	fmt.Fprintf(w, "moat watch: %s (engine %s), instance %s\n", ready, engine, s.Instance)
	fmt.Fprintf(w, "source:     %s\n", s.Source)
	if a := s.LastApplied; a != nil {
		fmt.Fprintf(w, "in force:   %s %s\n            applied %s\n", a.Revision, a.Summary, ago(now, a.At))
	} else {
		fmt.Fprintln(w, "in force:   nothing applied yet")
	}
	if l := s.LastSeen; l != nil {
		verdict := "valid"
		switch {
		case l.Refused != "":
			verdict = "REFUSED: " + l.Refused
		case !l.Valid:
			verdict = fmt.Sprintf("INVALID (%d problems shown)", len(l.Diagnostics))
		}
		fmt.Fprintf(w, "newest:     %s %s\n            %s\n", l.Revision, l.Summary, verdict)
		for _, d := range l.Diagnostics {
			fmt.Fprintf(w, "              %s\n", d)
		}
	}
	if p := s.LastPlan; p != nil {
		var ops []string
		for k, n := range p.Operations {
			ops = append(ops, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(ops)
		fmt.Fprintf(w, "last plan:  %s %s (%s)\n", p.Summary, strings.Join(ops, ", "), ago(now, p.At))
	}
	fmt.Fprintf(w, "drift:      %d operations corrected, last %s\n", s.DriftCorrected, ago(now, s.LastDriftAt))
	fmt.Fprintf(w, "rounds:     %d, last %s\n", s.Rounds, s.LastResult)
	if s.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", s.LastError)
	}
	fmt.Fprintf(w, "lock:       held by pid %d\n", s.Lock.PID)
	if !s.NextResync.IsZero() {
		fmt.Fprintf(w, "resync:     next at %s\n", s.NextResync.Local().Format(time.DateTime))
	}
}
