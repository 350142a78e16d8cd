package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestImportNeedsTheOperator runs a real sheetd logged in as user sheetd of
// deploy/nats/nats-server.conf and attacks sheetpipe.import as user client:
// the built sheetctl import and a raw request are refused by the server (a
// permission violation, no reply) and store nothing. The operator's import,
// sheetctl logged in as sheetd as README says, stores the job and its PDF.
func TestImportNeedsTheOperator(t *testing.T) {
	srv, srvLog := startConfServer(t, "nats/nats-server.conf")
	cfg := sheetdConfig(t)
	cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword = srv.ClientURL(), "sheetd", sheetdPassword
	runSheetd(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildSheetctl(ctx, t)

	id := uuid.NewString()
	forged := []byte("%PDF-1.5\nforged worksheet\n")
	dir := oldStore(t, id, forged)
	_, sjs, _ := connectAs(t, srv, "sheetd", sheetdPassword, nats.CustomInboxPrefix(service.InboxPrefix))
	stored := func() []string {
		t.Helper()
		var found []string
		if kv, err := sjs.KeyValue(ctx, kvstore.BucketJobs); err != nil {
			t.Fatal(err)
		} else if _, err := kv.Get(ctx, id); !errors.Is(err, jetstream.ErrKeyNotFound) {
			found = append(found, fmt.Sprintf("job (%v)", err))
		}
		if obs, err := sjs.ObjectStore(ctx, broker.BucketPDFs); err != nil {
			t.Fatal(err)
		} else if _, err := obs.GetInfo(ctx, id+".pdf"); !errors.Is(err, jetstream.ErrObjectNotFound) {
			found = append(found, fmt.Sprintf("pdf (%v)", err))
		}
		return found
	}

	t.Run("client's sheetctl import is refused", func(t *testing.T) {
		res := runSheetctl(ctx, t, bin, natsURL(srv, "client", clientPassword), "import", dir)
		if res.code == 0 || !strings.Contains(res.stderr, `Permissions Violation for Publish to "sheetpipe.import"`) ||
			!strings.Contains(res.stderr, "may not import") {
			t.Fatalf("exit %d, stderr %q: want refused by the server's permissions", res.code, res.stderr)
		}
		if s := stored(); len(s) > 0 {
			t.Fatalf("the refused import stored %v", s)
		}
	})

	t.Run("client's raw request is refused", func(t *testing.T) {
		cnc, _, clientErrs := connectAs(t, srv, "client", clientPassword)
		body, err := json.Marshal(events.ImportRequest{Records: []events.ImportRecord{{Source: "raw",
			Job: events.OldJob{ID: id, UserID: "mallory", Status: events.StatusCompleted, CurrentStep: events.StepDone,
				Prompt: "forged", Latex: "forged"}, PDF: forged}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, subject := range []string{events.ControlSubject(events.OpImport), "sheetpipe.import.x"} {
			if msg, err := cnc.Request(subject, body, 3*time.Second); err == nil {
				t.Fatalf("request on %s answered %s", subject, msg.Data)
			}
		}
		err = clientErrs.waitFor(t, fmt.Sprintf("Publish to %q", events.ControlSubject(events.OpImport)))
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("error %v, want a permission violation", err)
		}
		c, err := client.New(cnc)
		if err != nil {
			t.Fatal(err)
		}
		reqCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if reply, err := c.Import(reqCtx, events.ImportRequest{Records: []events.ImportRecord{{Job: events.OldJob{ID: id}}}}); err == nil {
			t.Fatalf("client.Import answered %+v", reply)
		}
		if s := stored(); len(s) > 0 {
			t.Fatalf("the refused requests stored %v", s)
		}
	})

	t.Run("operator imports as sheetd", func(t *testing.T) {
		violations := len(srvLog.Violations())
		res := runSheetctl(ctx, t, bin, natsURL(srv, "sheetd", sheetdPassword), "--json", "import", dir)
		if res.code != 0 || !strings.Contains(res.stdout, `"outcome":"imported"`) {
			t.Fatalf("operator's import: exit %d\nstdout %s\nstderr %s", res.code, res.stdout, res.stderr)
		}
		if v := srvLog.Violations(); len(v) != violations {
			t.Fatalf("the operator's import tripped permissions: %v", v[violations:])
		}
		cnc, _, _ := connectAs(t, srv, "client", clientPassword)
		c, err := client.New(cnc)
		if err != nil {
			t.Fatal(err)
		}
		job, err := c.Get(ctx, id)
		if err != nil || job.Status != events.StatusCompleted || job.UserID != "teacher" {
			t.Fatalf("imported job as client: %+v %v", job, err)
		}
		if pdf, err := c.PDF(ctx, id); err != nil || !bytes.Equal(pdf, forged) {
			t.Fatalf("imported PDF as client: %q %v", pdf, err)
		}
	})
}

// oldStore writes an old pipeline store of one completed job with its PDF.
func oldStore(t *testing.T, id string, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	jobs := fmt.Sprintf(`[{"id": %q, "user_id": "teacher", "status": "completed", "current_step": "done",
		"prompt": "fractions", "latex": "\\documentclass{article}\\begin{document}x\\end{document}",
		"pdf_url": "/pdfs/%s.pdf", "created_at": "2024-03-01T08:00:00Z", "updated_at": "2024-03-01T08:01:00Z"}]`, id, id)
	if err := os.WriteFile(filepath.Join(dir, "jobs.json"), []byte(jobs), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+".pdf"), pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// natsURL is srv's client URL with user and password in it, as README tells
// sheetctl users to log in.
func natsURL(srv *server.Server, user, password string) string {
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// buildSheetctl builds cmd/sheetctl into a temporary directory.
func buildSheetctl(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sheetctl")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sheetpipe/sheetpipe/cmd/sheetctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build sheetctl: %v\n%s", err, out)
	}
	return bin
}

type sheetctlResult struct {
	code           int
	stdout, stderr string
}

// runSheetctl runs the built sheetctl with NATS_URL=server and args.
func runSheetctl(ctx context.Context, t *testing.T, bin, server string, args ...string) sheetctlResult {
	t.Helper()
	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NATS_URL=" + server}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	res := sheetctlResult{stdout: stdout.String(), stderr: stderr.String()}
	switch {
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run sheetctl: %v", err)
	}
	return res
}
