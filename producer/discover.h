/* discover.h -- finding a pytest suite's tests: runs `pytest --collect-only`
 * without a shell and takes the node ids it prints, byte for byte (they are
 * what the worker later passes back after "--"). Owns the interpretation of
 * pytest's collection exit codes; the output parser is a pure function. */
#ifndef TF_DISCOVER_H
#define TF_DISCOVER_H

#include <signal.h>
#include <stddef.h>

#include "proto.h"

#define DISCOVER_MAX_OUTPUT (256u << 20) /* collection stdout cap */
#define DISCOVER_MAX_STDERR (64u << 10)	 /* stderr kept for messages */
#define DISCOVER_MAX_ID (64u << 10)	 /* longest node id accepted */

/* Parses the stdout of `pytest --collect-only -q`: node ids one per line
 * (a trailing "\r" is dropped), up to the first empty line; what follows
 * (warnings, "N tests collected") is ignored. Output that starts with the
 * empty line has no ids. Returns 0 and a NULL-terminated array of *nids
 * ids (caller frees with discover_ids_free; never NULL on success), or -1
 * with a message in err when the output has no empty line (truncated or
 * not collect output), a line holds a NUL byte, or an id is longer than
 * DISCOVER_MAX_ID. */
int discover_parse(const char *out, size_t len, char ***ids, size_t *nids,
		   char *err, size_t errlen);
void discover_ids_free(char **ids, size_t nids);

struct discover_opts {
	char *const *pytest; /* NULL-terminated pytest command ("pytest") */
	const char *cwd;     /* directory pytest runs in, absolute */
	const char *mark;    /* -m expression or NULL */
	const char *kexpr;   /* -k expression or NULL */
	char *const *paths;  /* paths or node ids after "--" */
	size_t npaths;
	const struct kv *env; /* the suite's env:, set over ours */
	size_t nenv;
	volatile sig_atomic_t *stop; /* set by a signal: give up */
};

enum discover_status {
	DISCOVER_OK,	    /* ids collected */
	DISCOVER_EMPTY,	    /* nothing selected (pytest exit 5, or no ids) */
	DISCOVER_USER,	    /* collection errors, bad -m/-k, usage: the
			     * user's to fix (exit 2) */
	DISCOVER_NOT_FOUND, /* the pytest command does not exist (exit 2) */
	DISCOVER_FAILED,    /* pytest crashed or misbehaved (exit 3) */
	DISCOVER_STOPPED    /* interrupted by the stop flag (exit 4) */
};

struct discover_result {
	enum discover_status status;
	char **ids; /* DISCOVER_OK: the node ids, in collection order */
	size_t nids;
	char *root;    /* DISCOVER_OK: the absolute directory the ids are
			* relative to (pytest's rootdir); tasks run there */
	char *message; /* one line, without a "testfleet: " prefix */
	char *details; /* pytest's own error lines (several, each ending
			* in "\n"), or NULL */
};

/* Runs the collection and fills res (zeroed first; release it with
 * discover_result_release). Always returns res->status. */
enum discover_status discover_run(const struct discover_opts *o,
				  struct discover_result *res);
void discover_result_release(struct discover_result *res);

/* Finds the directory the node ids are relative to -- pytest's rootdir,
 * which pytest -q does not print. pytest takes the common ancestor of its
 * arguments (cwd when there are none) or a directory above it holding an
 * ini file; so the candidates are that ancestor, then each directory up to
 * "/", and the first one under which the file parts of the first, middle
 * and last ids all exist wins. paths are the arguments as given (relative
 * to cwd, "::" suffixes allowed). Falls back to cwd. Returns a malloc'd
 * absolute path. */
char *discover_find_root(const char *cwd, char *const *paths, size_t npaths,
			 char *const *ids, size_t nids);

#endif
