package consumers

import "context"

// JanitorPass runs one janitor pass of p now, whatever its interval, and
// returns how many jobs, orphan conversations and orphan PDFs it deleted.
func (p *Pipeline) JanitorPass(ctx context.Context) (jobs, conversations, pdfs int, err error) {
	done, err := (&janitor{p: p}).pass(ctx, ctx)
	return done.jobs, done.conversations, done.pdfs, err
}

// ExpireJob runs the janitor's deletion of job id (whose conversation has the
// same id) as if its scan had found the job expired at revision rev, and reports
// whether it deleted the job.
func (p *Pipeline) ExpireJob(ctx context.Context, id string, rev uint64) (bool, error) {
	return (&janitor{p: p}).expire(ctx, expiredJob{id: id, conversation: id, rev: rev})
}
