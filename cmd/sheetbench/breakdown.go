package main

import (
	"fmt"
	"io"
)

// writeBreakdown writes the overhead saturation run's client messages per job by
// kind: each group's total, then its kinds.
func (r *Results) writeBreakdown(w io.Writer) {
	o := r.Overhead
	if o == nil || len(o.PerJob.kinds) == 0 {
		return
	}
	var counted float64
	for _, k := range o.PerJob.kinds {
		counted += k.PerJob
	}
	fmt.Fprintf(w, "Client messages per job by kind, overhead saturation run (%s jobs): %.2f counted on the "+
		"pipeline's and the load generator's connections, %.2f received by the server (in_msgs).\n\n",
		thousands(float64(o.Jobs)), counted, o.PerJob.ops)
	t := &table{head: []string{"Kind", "Detail", "Per job"}}
	group := ""
	for i, k := range o.PerJob.kinds {
		if k.Kind.Group != group {
			group = k.Kind.Group
			var sum float64
			for _, g := range o.PerJob.kinds[i:] {
				if g.Kind.Group == group {
					sum += g.PerJob
				}
			}
			t.add("**"+group+"**", "", fmt.Sprintf("**%.2f**", sum))
		}
		if k.PerJob >= 0.005 {
			t.add("", k.Kind.Detail, fmt.Sprintf("%.2f", k.PerJob))
		}
	}
	t.write(w)
}
