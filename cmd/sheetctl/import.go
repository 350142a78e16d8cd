package main

import (
	"context"
	"encoding/json"
	"errors"

	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/importer"
)

var importCommand = &command{
	name:    "import",
	args:    "<dir>",
	summary: "import the old pipeline's JSON store (jobs, conversations, PDFs) into sheetpipe",
	about: `sheetctl import <dir> reads the old pipeline's store (jobs.json and
conversations.json, or jobs/<id>.json and conversations/<id>.json; field names
as Go names, camelCase or snake_case) and sends its records to sheetd
(sheetpipe.import) in chunks, showing progress on stderr. Each job is stored with
its whole conversation and keeps its id, user, texts, errors, retries and times.
Completed, aborted and waiting_manual jobs are kept as they are; pending, error
and running jobs go on at their step, waiting_ai_fix ones at the fix stage. A
completed job's PDF is imported when its pdf_url names a file under <dir> or
--pdf-dir; otherwise --recompile-missing rebuilds it from its LaTeX.

A job whose id exists is skipped, never overwritten (with --overwrite, an
earlier import that nothing changed since is replaced), so running the import
again imports only what is missing. A record that cannot be imported is refused
with its reason and the others are imported. The report counts imported,
resumed, skipped and refused records per old status and names every refusal
(--json: every record's result). Exit 1 when a record was refused.

Importing stores completed jobs with any LaTeX and PDF, so the NATS user must
be allowed to call sheetpipe.import: with deploy/nats/auth.conf, user sheetd
(NATS_URL=nats://sheetd:PASSWORD@host:4222), not user client, whose request the
server refuses. The embedded server without users lets anyone on loopback in.`,
	setup: setupImport,
}

// importFlags are import's own flags.
type importFlags struct {
	dryRun, overwrite, recompile bool
	pdfDir                       string
}

func setupImport(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
	var f importFlags
	fs.BoolVar(&f.dryRun, "dry-run", false, "change nothing: print what an import would do")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace jobs an earlier import stored and nothing changed since")
	fs.BoolVar(&f.recompile, "recompile-missing", false, "rebuild a completed job's missing PDF from its LaTeX (compile stage)")
	fs.StringVar(&f.pdfDir, "pdf-dir", "", "another `directory` to look for the PDFs pdf_url names")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usageErr("import", "import needs the directory of the old store")
		}
		return a.importStore(ctx, f, args[0])
	}
}

const (
	// importChunkRecords bounds the records of one request.
	importChunkRecords = 200
	// importBodyMargin keeps a request below the service's body limit.
	importBodyMargin = 16 << 10
	// progressInterval is how often progress is shown.
	progressInterval = 500 * time.Millisecond
)

func (a *app) importStore(ctx context.Context, f importFlags, dir string) error {
	store, err := importer.Read(dir, f.pdfDir)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	nc, c, err := a.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, refuse := context.WithCancelCause(ctx)
	defer refuse(nil)
	// A NATS user not allowed to import has its request dropped by the server,
	// which says so asynchronously: end the import then, not at the timeout.
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			refuse(err)
		}
	})
	budget := int(min(nc.MaxPayload(), api.DefaultMaxBodyBytes)) - importBodyMargin
	rep := newImportReport(dir, store, f.dryRun)
	req := events.ImportRequest{DryRun: f.dryRun, Overwrite: f.overwrite, RecompileMissing: f.recompile}
	p := &progress{a: a, total: len(store.Records), start: time.Now()}
	size := 0
	flush := func() error {
		if len(req.Records) == 0 {
			return nil
		}
		results, err := a.sendImport(ctx, c, req)
		if err != nil {
			return err
		}
		rep.add(results...)
		p.advance(len(results))
		req.Records, size = req.Records[:0], 0
		return nil
	}
	for _, r := range store.Records {
		rec, n, ok := fitRecord(r, budget)
		if !ok {
			rep.add(events.ImportResult{JobID: rec.Job.ID, Source: rec.Source, Outcome: events.ImportRefused, OldStatus: rec.Job.Status,
				Reason: fmt.Sprintf("the record is %d bytes as JSON, more than the %d one import request can carry", n, budget)})
			p.advance(1)
			continue
		}
		if size+n > budget || len(req.Records) == importChunkRecords {
			if err := flush(); err != nil {
				return err
			}
		}
		req.Records, size = append(req.Records, rec), size+n+1
	}
	if err := flush(); err != nil {
		return err
	}
	p.done()
	if a.opts.json {
		a.printJSON(rep.json())
	} else {
		rep.print(a.out)
	}
	if n := rep.totals[events.ImportRefused]; n > 0 {
		return fmt.Errorf("import: %d of %d records refused (listed in the report)", n, rep.records())
	}
	return nil
}

// fitRecord loads r (with its PDF when it fits) and returns its encoded size;
// false when it does not fit in budget even without its PDF.
func fitRecord(r importer.Record, budget int) (events.ImportRecord, int, bool) {
	// base64 makes a PDF 4/3 its size; the rest of the record needs room too.
	rec := r.Load(int64(budget/4*3) - int64(len(r.Job.Latex)+len(r.Job.Design)+len(r.Job.Prompt)))
	n := encodedSize(rec)
	if n > budget && rec.PDF != nil {
		rec.PDF = nil
		rec.PDFNote = "the PDF does not fit in one import request with its job"
		n = encodedSize(rec)
	}
	return rec, n, n <= budget
}

func encodedSize(rec events.ImportRecord) int {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0
	}
	return len(data)
}

// sendImport sends one chunk; a failure of the request as a whole ends the
// import (what was sent before is stored: run it again to go on).
func (a *app) sendImport(ctx context.Context, c *client.Client, req events.ImportRequest) ([]events.ImportResult, error) {
	reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reply, err := c.Import(reqCtx, req)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, nats.ErrPermissionViolation) {
		return nil, fmt.Errorf("import: the NATS server refused it (%v): this NATS user may not import; "+
			"the operator imports as user sheetd", cause)
	}
	if err != nil {
		return nil, refused(err, "import (the records sent before are stored; run the import again to go on)")
	}
	if len(reply.Results) != len(req.Records) {
		return nil, fmt.Errorf("import: the service answered %d results for %d records", len(reply.Results), len(req.Records))
	}
	return reply.Results, nil
}

// progress shows how far the import is on stderr, at most every
// progressInterval.
type progress struct {
	a          *app
	total, n   int
	shown      int // n when progress was last shown
	start      time.Time
	lastReport time.Time
}

func (p *progress) advance(n int) {
	p.n += n
	if time.Since(p.lastReport) >= progressInterval {
		p.show()
	}
}

func (p *progress) done() {
	if p.n > p.shown {
		p.show()
	}
}

func (p *progress) show() {
	p.lastReport, p.shown = time.Now(), p.n
	fmt.Fprintf(p.a.err, "import: %d/%d jobs (%s)\n", p.n, p.total, time.Since(p.start).Round(time.Millisecond))
}
