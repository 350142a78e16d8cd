package consumers

import (
	"context"
	"errors"
	"fmt"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// references are the final LaTeX of the jobs j depends on, read now. A
// dependency without LaTeX (or gone) is left out.
func (p *Pipeline) references(ctx context.Context, j *events.Job) ([]ai.Reference, error) {
	var refs []ai.Reference
	for _, id := range j.DependsOn {
		d, _, err := p.store.Get(ctx, id)
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			p.log.WarnContext(ctx, "dependency gone", "job_id", j.ID, "dependency", id)
			continue
		case err != nil:
			return nil, fmt.Errorf("load dependency %s: %w", id, err)
		}
		if d.Latex != "" {
			refs = append(refs, ai.Reference{JobID: id, Latex: d.Latex})
		}
	}
	return refs, nil
}
