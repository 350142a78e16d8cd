// Package failpoint makes sheetd die abruptly at named points of a stage's work,
// so tests can prove that a crash at any of them loses no job and runs no stage
// twice on the same input.
//
// It is compiled into the normal binary and inert unless the environment variable
// SHEETPIPE_FAILPOINTS is set when the process starts; it is read once, by this
// package's init. Disarmed, a call site costs one atomic pointer load.
//
// # Specification
//
// SHEETPIPE_FAILPOINTS is a comma list of name=action[@hit]:
//
//	SHEETPIPE_FAILPOINTS=design.after-claim=exit
//	SHEETPIPE_FAILPOINTS=compile.after-write=kill@2,fix.after-publish=exit
//
// A name is <stage>.<point>: stage one of prompt, design, latex, compile, fix;
// point one of
//
//   - after-claim: the job was CAS-set running under this worker's lease (not
//     prompt);
//   - after-work: the LLM call or the compile returned (its answer recorded in
//     the conversation, the PDF stored), before the result is written (not prompt);
//   - after-write: the result and the next hand-off were CAS-written and the status
//     event published, before the next ticket is published (for prompt: the job
//     was created, before its first event and its design ticket);
//   - after-publish: the stage's work succeeded and its next ticket was published,
//     before the message is acknowledged.
//
// The action exit ends the process with os.Exit(3) (no deferred function runs, no
// buffered NATS data is flushed); kill sends SIGKILL to the process itself. @hit
// (default 1) fires on that hit of the point only, counted per process: exit@2
// exits on the second job that reaches the point.
//
// A bad specification stops the process at start with exit code 2 and a message
// naming SHEETPIPE_FAILPOINTS. An armed process says so on stderr at start, and
// again when a failpoint fires, as JSON log lines at level ERROR.
package failpoint
