/* test_redisconn.c -- blocking connections against a real, throwaway
 * redis-server on a unix socket in a temporary directory (password, an ACL
 * user, SELECT, refused and missing addresses, retry, timeouts, scripts by
 * SHA with the NOSCRIPT fallback). Skipped when redis-server is not
 * installed; the server is killed on every exit path (and by
 * PR_SET_PDEATHSIG if this process dies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redisconn.h"
#include "redisurl.h"
#include "sha1.h"

#define PASSWORD "s3cret-pw"
#define ALICE_PASSWORD "alice-pw"

struct server {
	pid_t pid;
	char dir[64];
	char sock[128];
};

static int find_in_path(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	const char *p, *end;

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		snprintf(out, outlen, "%.*s/%s", (int)(end - p), p, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void url_unix(struct redis_url *u, const struct server *s,
		     const char *user, const char *password, int db)
{
	memset(u, 0, sizeof(*u));
	u->kind = REDIS_URL_UNIX;
	u->path = (char *)s->sock;
	u->user = (char *)user;
	u->password = (char *)password;
	u->db = db;
}

static void remove_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void server_stop(struct server *s)
{
	int status;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
	}
	remove_dir(s->dir);
}

static int group_setup(void **state)
{
	char prog[512], log[160], err[256];
	struct server *s;
	struct redis_url u;
	redisContext *c;
	int fd;

	if (find_in_path("redis-server", prog, sizeof(prog)) < 0) {
		*state = NULL;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/tf-redisconn-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		free(s);
		return -1;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	s->pid = fork();
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(prog, "redis-server", "--port", "0", "--unixsocket",
		      s->sock, "--unixsocketperm", "700", "--dir", s->dir,
		      "--save", "", "--appendonly", "no", "--requirepass",
		      PASSWORD, "--user", "alice", "on", ">" ALICE_PASSWORD,
		      "~*", "&*", "+@all", "--enable-debug-command", "local",
		      (char *)NULL);
		_exit(127);
	}
	if (s->pid < 0) {
		remove_dir(s->dir);
		free(s);
		return -1;
	}
	/* Waiting for the socket is itself a test of the retry loop. */
	url_unix(&u, s, NULL, PASSWORD, 0);
	c = redisconn_open_retry(&u, 1000, 10000, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "redis-server did not start: %s\n", err);
		server_stop(s);
		free(s);
		return -1;
	}
	redisFree(c);
	*state = s;
	return 0;
}

static int group_teardown(void **state)
{
	struct server *s = *state;

	if (s != NULL) {
		server_stop(s);
		free(s);
	}
	return 0;
}

#define NEED_SERVER(state)                                                     \
	do {                                                                   \
		if (*(state) == NULL)                                          \
			skip();                                                \
	} while (0)

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	void *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static void test_connect_password_and_db(void **state)
{
	struct server *s = *state;
	struct redis_url u;
	redisContext *c;
	redisReply *r;
	char err[256];

	NEED_SERVER(state);
	url_unix(&u, s, NULL, PASSWORD, 0);
	c = redisconn_open(&u, 2000, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	r = cmd(c, "CLIENT INFO");
	assert_non_null(strstr(r->str, " db=0 "));
	freeReplyObject(r);
	redisFree(c);

	url_unix(&u, s, NULL, PASSWORD, 3);
	c = redisconn_open(&u, 2000, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	r = cmd(c, "CLIENT INFO");
	assert_non_null(strstr(r->str, " db=3 "));
	freeReplyObject(r);
	redisFree(c);

	/* A database the server does not have. */
	url_unix(&u, s, NULL, PASSWORD, 99);
	c = redisconn_open(&u, 2000, err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "cannot select the database"));
	assert_non_null(strstr(err, s->sock));
}

static void test_acl_user(void **state)
{
	struct server *s = *state;
	struct redis_url u;
	redisContext *c;
	redisReply *r;
	char err[256];

	NEED_SERVER(state);
	url_unix(&u, s, "alice", ALICE_PASSWORD, 0);
	c = redisconn_open(&u, 2000, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	r = cmd(c, "ACL WHOAMI");
	assert_string_equal(r->str, "alice");
	freeReplyObject(r);
	redisFree(c);

	url_unix(&u, s, "alice", PASSWORD, 0);
	assert_null(redisconn_open(&u, 2000, err, sizeof(err)));
	assert_non_null(strstr(err, "authentication failed"));
	assert_non_null(strstr(err, "WRONGPASS"));
	assert_null(strstr(err, PASSWORD));
}

static void test_auth_errors(void **state)
{
	struct server *s = *state;
	struct redis_url u;
	char err[256];
	long long t0;

	NEED_SERVER(state);
	url_unix(&u, s, NULL, "wrong-pw", 0);
	assert_null(redisconn_open(&u, 2000, err, sizeof(err)));
	assert_true(strncmp(err, "redis: ", 7) == 0);
	assert_non_null(strstr(err, s->sock));
	assert_non_null(strstr(err, "authentication failed"));
	assert_null(strstr(err, "wrong-pw"));

	/* Not worth retrying: gives up at once. */
	t0 = now_ms();
	assert_null(redisconn_open_retry(&u, 2000, 5000, err, sizeof(err)));
	assert_true(now_ms() - t0 < 1000);
	assert_null(strstr(err, "gave up"));

	url_unix(&u, s, NULL, NULL, 0);
	assert_null(redisconn_open(&u, 2000, err, sizeof(err)));
	assert_non_null(strstr(err, "NOAUTH"));
}

/* A TCP port nothing listens on: bind one, then close it. */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void test_unreachable(void **state)
{
	struct redis_url u;
	char err[256], want[128];
	long long t0, took;
	int port = free_port();

	(void)state;
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_TCP;
	u.host = "127.0.0.1";
	u.port = port;
	u.password = "hidden-pw";
	assert_null(redisconn_open(&u, 1000, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "redis: cannot connect to 127.0.0.1:%d: Connection refused",
		 port);
	assert_string_equal(err, want);

	t0 = now_ms();
	assert_null(redisconn_open_retry(&u, 1000, 400, err, sizeof(err)));
	took = now_ms() - t0;
	assert_true(took >= 400);
	assert_true(took < 3000);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_non_null(strstr(err, "gave up after"));
	assert_null(strstr(err, "hidden-pw"));

	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = "/nonexistent/tf.sock";
	assert_null(redisconn_open(&u, 1000, err, sizeof(err)));
	assert_string_equal(err, "redis: cannot connect to "
				 "/nonexistent/tf.sock: No such file or "
				 "directory");

	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_TCP;
	u.host = "::1";
	u.port = port;
	assert_null(redisconn_open(&u, 1000, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "redis: cannot connect to [::1]:%d: ", port);
	assert_true(strncmp(err, want, strlen(want)) == 0);
}

static void test_command_timeout(void **state)
{
	struct server *s = *state;
	struct redis_url u;
	redisContext *c;
	redisReply *r;
	char err[256];
	long long t0;

	NEED_SERVER(state);
	url_unix(&u, s, NULL, PASSWORD, 0);
	c = redisconn_open(&u, 200, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	t0 = now_ms();
	r = redisCommand(c, "DEBUG SLEEP 0.6");
	assert_null(r);
	assert_true(c->err != 0);
	assert_true(now_ms() - t0 < 550);
	redisFree(c);
	/* Let the server wake before the next test. */
	usleep(700 * 1000);
}

static long stat_calls(redisContext *c, const char *command)
{
	char key[64];
	redisReply *r = cmd(c, "INFO commandstats");
	const char *p;
	long n = 0;

	snprintf(key, sizeof(key), "cmdstat_%s:calls=", command);
	p = strstr(r->str, key);
	if (p != NULL)
		n = strtol(p + strlen(key), NULL, 10);
	freeReplyObject(r);
	return n;
}

static void test_script(void **state)
{
	static const char script[] =
	    "return {KEYS[1], ARGV[1], ARGV[2], #ARGV[2]}";
	struct server *s = *state;
	const char *argv[] = {"key:1", "plain", "x\0y"};
	const size_t argvlen[] = {5, 5, 3};
	char sha[SHA1_HEX_LEN + 1], err[256];
	struct redis_url u;
	redisContext *c;
	redisReply *r;
	int round;

	NEED_SERVER(state);
	url_unix(&u, s, NULL, PASSWORD, 0);
	c = redisconn_open(&u, 2000, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	freeReplyObject(cmd(c, "SCRIPT FLUSH"));
	freeReplyObject(cmd(c, "CONFIG RESETSTAT"));
	for (round = 0; round < 3; round++) {
		r = redisconn_script(c, script, 1, 3, argv, argvlen);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_int_equal(r->elements, 4);
		assert_string_equal(r->element[0]->str, "key:1");
		assert_string_equal(r->element[1]->str, "plain");
		assert_int_equal(r->element[2]->len, 3);
		assert_memory_equal(r->element[2]->str, "x\0y", 3);
		assert_int_equal(r->element[3]->integer, 3);
		freeReplyObject(r);
	}
	/* One EVAL (after the first NOSCRIPT), EVALSHA every time. */
	assert_int_equal(stat_calls(c, "eval"), 1);
	assert_int_equal(stat_calls(c, "evalsha"), 3);

	/* Our SHA-1 is the one Redis computes. */
	sha1_hex(script, strlen(script), sha);
	r = cmd(c, "SCRIPT LOAD %s", script);
	assert_string_equal(r->str, sha);
	freeReplyObject(r);

	/* Without argvlen, NUL-terminated arguments. */
	r = redisconn_script(c, "return #KEYS + #ARGV", 2, 3, argv, NULL);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 3);
	freeReplyObject(r);

	/* A script error is a reply, not a connection error. */
	r = redisconn_script(c, "return redis.call('NOSUCHCMD')", 0, 0, NULL,
			     NULL);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	redisFree(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect_password_and_db),
	    cmocka_unit_test(test_acl_user),
	    cmocka_unit_test(test_auth_errors),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_command_timeout),
	    cmocka_unit_test(test_script),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
