// Package reliability holds the library's reliability and security suite:
// tests only. They drive the real packages (tpm, container, reset and the
// reference PIN reset service) on the embedded TPM simulator and prove that
// the library keeps working, loses nothing and leaks no secret when things go
// wrong:
//
//   - TPM faults: a transport between the library and the TPM fails the N-th
//     command of every operation, as a TPM error response, as a command that
//     never arrives and as a response that is lost after the TPM acted; the
//     input container must still unlock and nothing may stay loaded in the
//     TPM;
//   - service and directory faults: timeouts, server errors, truncated,
//     malformed and wrongly sealed answers must give typed errors and leave
//     the container intact;
//   - crash safety: a process saving containers in a loop is killed with
//     SIGKILL at random moments, and the file on disk is always a whole
//     generation, old or new;
//   - concurrency: many goroutines on one TPM, more open sessions than the
//     TPM has object slots, and two processes saving the same container;
//   - hostile input: every decoder meets the corpus of past crashers;
//   - secrets: no PIN, container secret or protector crosses the TPM
//     interface, or reaches an error, a log line, an event or a printed value,
//     and buffers that held them are wiped;
//   - lockout: the dictionary-attack counter the library reports is the one
//     the TPM keeps, up to lockout and back.
//
// Sizes grow with the environment: reduced by default, smaller still with
// -short, and full when HELLOSIM_LONG=1 (as continuous integration runs it).
package reliability
