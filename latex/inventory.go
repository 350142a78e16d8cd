package latex

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Inventory is what the TeX installation can load among the packages,
// document classes and babel languages worksheets use (the catalogue below).
// Each list keeps the catalogue's order.
type Inventory struct {
	Packages  []string // installed packages, e.g. "enumitem"
	Classes   []string // installed document classes, e.g. "exam"
	Languages []string // installed babel languages, e.g. "french"
	// Absent are catalogue packages LLMs reach for that are not installed,
	// e.g. "fontawesome5" without texlive-fonts-extra.
	Absent []string
}

// The catalogue: what worksheets written by LLMs load. fontspec and
// unicode-math are left out on purpose: they need XeLaTeX or LuaLaTeX.
var (
	catalogPackages = []string{
		// layout and structure
		"geometry", "fancyhdr", "lastpage", "multicol", "enumitem", "titlesec", "parskip", "setspace",
		"needspace", "ragged2e", "changepage", "microtype", "hyperref", "xcolor", "graphicx", "float",
		"wrapfig", "caption", "subcaption", "background", "draftwatermark", "eso-pic",
		// tables
		"array", "tabularx", "booktabs", "longtable", "multirow", "makecell", "colortbl", "hhline",
		"arydshln", "diagbox", "threeparttable",
		// boxes and exercises
		"tcolorbox", "mdframed", "framed", "tasks", "exsheets", "xsim", "answers",
		// math and science
		"amsmath", "amssymb", "amsthm", "mathtools", "bm", "cancel", "xfrac", "nicefrac", "gensymb",
		"siunitx", "units", "numprint", "icomma", "mhchem", "chemfig", "physics", "esvect", "polynom",
		"xlop", "dsfont", "bbm", "stmaryrd", "mathrsfs", "upgreek", "empheq",
		// figures
		"tikz", "pgfplots", "pgf-pie", "tkz-euclide", "tkz-tab", "circuitikz", "tikz-cd", "forest",
		"tikz-3dplot", "pstricks",
		// text, languages, fonts and symbols
		"inputenc", "fontenc", "babel", "csquotes", "lmodern", "textcomp", "eurosym", "ulem", "soul",
		"helvet", "mathptmx", "charter", "newtxtext", "newtxmath", "libertine", "fourier", "kpfonts",
		"roboto", "lato", "opensans", "pifont", "wasysym", "marvosym", "bbding", "dingbat",
		"fontawesome5", "fontawesome", "academicons", "tikzsymbols", "skak", "chessboard",
		// code and programming
		"listings", "verbatim", "fancyvrb", "calc", "ifthen", "etoolbox", "xparse", "xstring", "comment",
		"lipsum", "qrcode", "verse",
	}
	catalogClasses   = []string{"article", "exam", "scrartcl", "extarticle", "memoir", "report", "standalone", "letter"}
	catalogLanguages = []string{
		"english", "british", "american", "french", "german", "ngerman", "spanish", "italian", "portuguese",
		"brazilian", "catalan", "dutch", "polish", "latin", "greek", "russian",
	}
)

// inventoryTimeout bounds the one kpsewhich call of an inventory.
const inventoryTimeout = 20 * time.Second

var inventories = struct {
	sync.Mutex
	byCommand map[string]Inventory
}{byCommand: map[string]Inventory{}}

// TakeInventory asks the kpsewhich next to command (pdflatex, a name on
// PATH or a path; "" is "pdflatex") which catalogue packages, classes and
// babel languages it finds, in one call. The answer is cached per command for
// the life of the process: installing packages needs a restart to show.
func TakeInventory(ctx context.Context, command string) (Inventory, error) {
	if command == "" {
		command = defaultCommand
	}
	inventories.Lock()
	defer inventories.Unlock()
	if inv, ok := inventories.byCommand[command]; ok {
		return inv, nil
	}
	inv, err := takeInventory(ctx, command)
	if err != nil {
		return Inventory{}, err
	}
	inventories.byCommand[command] = inv
	return inv, nil
}

func takeInventory(ctx context.Context, command string) (Inventory, error) {
	path, err := exec.LookPath(command)
	if err != nil {
		return Inventory{}, fmt.Errorf("%w: %w", ErrNoCompiler, err)
	}
	kpsewhich := filepath.Join(filepath.Dir(path), "kpsewhich")
	if _, err := exec.LookPath(kpsewhich); err != nil {
		if kpsewhich, err = exec.LookPath("kpsewhich"); err != nil {
			return Inventory{}, fmt.Errorf("%w: kpsewhich: %w", ErrNoCompiler, err)
		}
	}
	var files []string
	for _, p := range catalogPackages {
		files = append(files, p+".sty")
	}
	for _, c := range catalogClasses {
		files = append(files, c+".cls")
	}
	for _, l := range catalogLanguages {
		files = append(files, l+".ldf")
	}
	ctx, cancel := context.WithTimeout(ctx, inventoryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kpsewhich, append([]string{"-engine=pdftex", "-progname=pdflatex"}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// kpsewhich exits 1 when any file is missing: only no output at all is a failure.
	if err != nil && len(out) == 0 {
		return Inventory{}, fmt.Errorf("latex: inventory with %s: %w: %s", kpsewhich, err, strings.TrimSpace(stderr.String()))
	}
	found := map[string]bool{}
	for l := range strings.Lines(string(out)) {
		found[filepath.Base(strings.TrimSpace(l))] = true
	}
	var inv Inventory
	for _, p := range catalogPackages {
		if found[p+".sty"] {
			inv.Packages = append(inv.Packages, p)
		} else {
			inv.Absent = append(inv.Absent, p)
		}
	}
	for _, c := range catalogClasses {
		if found[c+".cls"] {
			inv.Classes = append(inv.Classes, c)
		}
	}
	for _, l := range catalogLanguages {
		if found[l+".ldf"] {
			inv.Languages = append(inv.Languages, l)
		}
	}
	if len(inv.Classes) == 0 {
		return Inventory{}, fmt.Errorf("latex: inventory with %s: not even article.cls found", kpsewhich)
	}
	return inv, nil
}
