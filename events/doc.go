// Package events owns sheetpipe's wire contract: the NATS subject names, the job
// request clients publish on jobs.prompt, the internal stage tickets on
// jobs.design|latex|compile|fix, the status events on jobs.status and the
// rejections on jobs.rejected, with their JSON codecs and validation; and the
// records that get, list and the Go client return (Job, Conversation), with the
// errors the control API answers with.
//
// It has no NATS dependency: it only encodes, decodes and validates, so every other
// package (stages, API, CLI, tests) agrees on one definition of each message.
package events
