package importer

import "errors"

// ErrNoStore means the directory holds neither layout of the old store.
var ErrNoStore = errors.New("not an old pipeline store")
