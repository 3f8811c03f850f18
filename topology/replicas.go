package topology

import "slices"

// ControllerTargets are the targets every managed bridge in controller mode
// connects to, one per controller replica: Controller first, then the
// other replicas of Controllers. Nil when no controller is set. Controller
// leads so that code (and tests) that set only Controller keep one target.
func (t *Topology) ControllerTargets() []string {
	if t.Controller == "" {
		return nil
	}
	out := []string{t.Controller}
	for _, c := range t.Controllers {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}
