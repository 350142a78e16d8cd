package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"

	"github.com/spf13/cobra"
)

// A context is a named set of connection settings, like nats context: the NATS
// servers and credentials, and the HTTP API with its token. They live in one
// file, config.json under $XDG_CONFIG_HOME/sheetctl (default ~/.config/sheetctl),
// mode 0600 in a 0700 directory, since it may hold a password and a token.
type sheetContext struct {
	Server       string `json:"server,omitempty"`
	Creds        string `json:"creds,omitempty"`
	NATSUser     string `json:"nats_user,omitempty"`
	NATSPassword string `json:"nats_password,omitempty"`
	API          string `json:"api,omitempty"`
	APIToken     string `json:"api_token,omitempty"`
	Description  string `json:"description,omitempty"`
}

// config is the file: the contexts by name and the current one.
type config struct {
	Current  string                   `json:"current,omitempty"`
	Contexts map[string]*sheetContext `json:"contexts"`
}

// contextName is what a context may be called.
var contextName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// configPath is the config file's path; "" when neither $XDG_CONFIG_HOME nor
// $HOME is set.
func (a *app) configPath() string {
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := a.getenv("HOME")
		if home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "sheetctl", "config.json")
}

// loadConfig reads the config file; a missing one is an empty config. A file
// that others may read or write is refused: it may hold secrets, and settings
// someone else could change would send them elsewhere.
func (a *app) loadConfig() (*config, string, error) {
	path := a.configPath()
	c := &config{Contexts: map[string]*sheetContext{}}
	if path == "" {
		return c, "", nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return nil, path, fmt.Errorf("config %s is open to others (mode %04o); it may hold secrets: chmod 600 %s", path, mode, path)
	}
	if err := json.NewDecoder(f).Decode(c); err != nil {
		return nil, path, fmt.Errorf("config %s: %w", path, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]*sheetContext{}
	}
	return c, path, nil
}

// saveConfig writes c to path, mode 0600, through a temporary file so a reader
// never sees half of it.
func saveConfig(path string, c *config) error {
	if path == "" {
		return errors.New("save config: set $HOME or $XDG_CONFIG_HOME")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config.json.*") // mode 0600
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// resolveSettings gives every connection setting not set by its flag its value:
// from the context --context names, else the environment, else the current
// context, else the default. Flags override everything; an explicit --context
// overrides the environment.
func (a *app) resolveSettings(cmd *cobra.Command) error {
	var named, current *sheetContext
	if a.opts.context != "" || a.configPath() != "" {
		c, _, err := a.loadConfig()
		if err != nil {
			return err
		}
		if a.opts.context != "" {
			if named = c.Contexts[a.opts.context]; named == nil {
				return usageErr(cmd.Name(), "no context %q (sheetctl context ls lists them)", a.opts.context)
			}
		} else if c.Current != "" {
			current = c.Contexts[c.Current]
		}
	}
	if named == nil {
		named = &sheetContext{}
	}
	if current == nil {
		current = &sheetContext{}
	}
	for _, s := range []struct {
		flag, env string
		value     *string
		named     string
		current   string
		fallback  string
	}{
		{"server", "NATS_URL", &a.opts.server, named.Server, current.Server, defaultServer},
		{"creds", "NATS_CREDS", &a.opts.creds, named.Creds, current.Creds, ""},
		{"nats-user", "NATS_USER", &a.opts.natsUser, named.NATSUser, current.NATSUser, ""},
		{"nats-password", "NATS_PASSWORD", &a.opts.natsPassword, named.NATSPassword, current.NATSPassword, ""},
		{"api", "SHEETPIPE_API", &a.opts.api, named.API, current.API, defaultAPI},
		{"api-token", "SHEETPIPE_API_TOKEN", &a.opts.apiToken, named.APIToken, current.APIToken, ""},
	} {
		if a.opts.changed[s.flag] {
			continue
		}
		for _, v := range []string{s.named, a.getenv(s.env), s.current, s.fallback} {
			if v != "" {
				*s.value = v
				break
			}
		}
	}
	return nil
}

// contextNames is the config's context names, sorted.
func (c *config) names() []string {
	names := make([]string, 0, len(c.Contexts))
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return slices.Clip(names)
}
