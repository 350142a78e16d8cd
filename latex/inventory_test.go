package latex

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The inventory is what kpsewhich finds: the Makefile's TEXLIVE set has the
// worksheet packages and five babel languages; texlive-fonts-extra is not
// installed, so its icon fonts are absent.
func TestTakeInventory(t *testing.T) {
	inv, err := TakeInventory(t.Context(), "")
	if err != nil {
		t.Fatalf("TakeInventory: %v", err)
	}
	for _, p := range []string{"amsmath", "enumitem", "tikz", "pgfplots", "tcolorbox", "siunitx", "lastpage", "ulem", "lmodern", "babel"} {
		requireEqual(t, slices.Contains(inv.Packages, p), true, "installed "+p)
	}
	for _, c := range []string{"article", "exam"} {
		requireEqual(t, slices.Contains(inv.Classes, c), true, "installed class "+c)
	}
	for _, l := range []string{"english", "french", "german", "spanish", "italian", "portuguese"} {
		requireEqual(t, slices.Contains(inv.Languages, l), true, "installed language "+l)
	}
	requireEqual(t, slices.Contains(inv.Absent, "fontawesome5"), true, "fontawesome5 absent")
	requireEqual(t, slices.Contains(inv.Packages, "fontawesome5"), false, "fontawesome5 installed")
	requireEqual(t, len(inv.Packages)+len(inv.Absent), len(catalogPackages), "every catalogue package is either")

	again, err := TakeInventory(t.Context(), "pdflatex")
	if err != nil {
		t.Fatalf("TakeInventory again: %v", err)
	}
	requireEqual(t, &again.Packages[0], &inv.Packages[0], "cached inventory")
}

func TestTakeInventoryWithoutCompiler(t *testing.T) {
	_, err := TakeInventory(t.Context(), filepath.Join(t.TempDir(), "no-pdflatex"))
	requireEqual(t, errors.Is(err, ErrNoCompiler), true, "ErrNoCompiler: "+errString(err))
}

// A pdflatex whose kpsewhich finds nothing (a broken installation) is an
// error, not an empty inventory that would tell the LLM nothing exists.
func TestTakeInventoryEmptyTree(t *testing.T) {
	dir := t.TempDir()
	for name, script := range map[string]string{"pdflatex": "#!/bin/sh\nexit 0\n", "kpsewhich": "#!/bin/sh\nexit 1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := TakeInventory(t.Context(), filepath.Join(dir, "pdflatex"))
	requireEqual(t, err != nil, true, "error")
	requireContains(t, err.Error(), "kpsewhich", "error")
}
