// Package importer reads the JSON store of the pipeline sheetpipe replaces
// (./storage/pipeline/ of the old in-process system) and turns it into import
// records for the control API's sheetpipe.import, which sheetctl import streams
// to sheetd in chunks.
//
// It accepts both layouts of the old store (jobs.json and conversations.json,
// each an array or an object keyed by id; or jobs/<id>.json and
// conversations/<id>.json, one record a file) and the three spellings of its
// field names (the Go names "UserID", camelCase "userId", snake_case
// "user_id"). Fields it does not know are kept as they were, for the job's
// "imported" object. A record it cannot read (malformed JSON, a field of the
// wrong type or given twice, a conversation whose job is not in the store) is
// refused with its reason; every other record is still read. It touches no
// NATS resource: sheetd checks and writes every record.
package importer
