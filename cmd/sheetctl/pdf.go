package main

import (
	"context"

	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
)

var pdfCommand = &command{
	name:    "pdf",
	args:    "<job-id>",
	summary: "save a completed job's PDF",
	about:   "Downloads the job's PDF from the object store and writes it to <job_id>.pdf in\nthe current directory, or to --output (-o).",
	setup: func(a *app, fs *pflag.FlagSet) func(context.Context, []string) error {
		var output string
		fs.StringVarP(&output, "output", "o", "", "`file` to write (default <job_id>.pdf in the current directory)")
		return func(ctx context.Context, args []string) error { return a.pdf(ctx, args, output) }
	},
}

func (a *app) pdf(ctx context.Context, args []string, output string) error {
	if len(args) != 1 {
		return usageErr("pdf", "pdf needs one job id")
	}
	id, err := jobIDArg("pdf", args[0])
	if err != nil {
		return err
	}
	return a.withClient(func(c *client.Client) error { return a.savePDF(ctx, c, id, output) })
}

// savePDF downloads job id's PDF, writes it to path (default <id>.pdf in a.dir)
// and says so.
func (a *app) savePDF(ctx context.Context, c *client.Client, id, path string) error {
	path, size, err := a.writePDF(ctx, c, id, path)
	if err != nil {
		return err
	}
	a.printSaved(id, path, size)
	return nil
}

// writePDF downloads job id's PDF and writes it to path (default <id>.pdf in
// a.dir); it returns the absolute path and the size.
func (a *app) writePDF(ctx context.Context, c *client.Client, id, path string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	pdf, err := c.PDF(ctx, id)
	if err != nil {
		return "", 0, fmt.Errorf("download PDF: %w", err)
	}
	if path == "" {
		path = filepath.Join(a.dir, id+".pdf")
	}
	if err := writeFile(path, pdf); err != nil {
		return "", 0, fmt.Errorf("save PDF of job %s: %w", id, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, len(pdf), nil
}

// writeFile writes data to path through a temporary file in the same directory,
// so path never holds a partial PDF.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
