/* test_redisurl.c -- Redis address parsing: a table of good URLs with what
 * they parse to, and a table of bad ones with the message they must give
 * (which never includes the password). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "redisurl.h"

struct good {
	const char *url;
	enum redis_url_kind kind;
	const char *host;
	int port;
	const char *path;
	const char *user;
	const char *password;
	int db;
	const char *display;
};

static const struct good goods[] = {
    {"redis://localhost", REDIS_URL_TCP, "localhost", 6379, NULL, NULL, NULL, 0,
     "redis://localhost:6379"},
    {"redis://127.0.0.1:6390", REDIS_URL_TCP, "127.0.0.1", 6390, NULL, NULL,
     NULL, 0, "redis://127.0.0.1:6390"},
    {"redis://h:1/15", REDIS_URL_TCP, "h", 1, NULL, NULL, NULL, 15,
     "redis://h:1/15"},
    {"redis://h/3", REDIS_URL_TCP, "h", 6379, NULL, NULL, NULL, 3,
     "redis://h:6379/3"},
    {"redis://h:6379/", REDIS_URL_TCP, "h", 6379, NULL, NULL, NULL, 0,
     "redis://h:6379"},
    {"redis://h?db=4", REDIS_URL_TCP, "h", 6379, NULL, NULL, NULL, 4,
     "redis://h:6379/4"},
    {"redis://my-host_1.example.com:65535", REDIS_URL_TCP,
     "my-host_1.example.com", 65535, NULL, NULL, NULL, 0,
     "redis://my-host_1.example.com:65535"},
    {"redis://:secret@h", REDIS_URL_TCP, "h", 6379, NULL, NULL, "secret", 0,
     "redis://h:6379"},
    {"redis://alice:s%40cr%3At@h:7000/2", REDIS_URL_TCP, "h", 7000, NULL,
     "alice", "s@cr:t", 2, "redis://alice@h:7000/2"},
    {"redis://al%20ice:p%2Fw%25@h", REDIS_URL_TCP, "h", 6379, NULL, "al ice",
     "p/w%", 0, "redis://al ice@h:6379"},
    {"redis://:p@ss/w@host", REDIS_URL_TCP, "host", 6379, NULL, NULL, "p@ss/w",
     0, "redis://host:6379"},
    {"redis://:@h", REDIS_URL_TCP, "h", 6379, NULL, NULL, NULL, 0,
     "redis://h:6379"},
    {"redis://[::1]:6380/1", REDIS_URL_TCP, "::1", 6380, NULL, NULL, NULL, 1,
     "redis://[::1]:6380/1"},
    {"redis://[2001:db8::7]", REDIS_URL_TCP, "2001:db8::7", 6379, NULL, NULL,
     NULL, 0, "redis://[2001:db8::7]:6379"},
    {"redis://u:p@[::1]:7/7", REDIS_URL_TCP, "::1", 7, NULL, "u", "p", 7,
     "redis://u@[::1]:7/7"},
    {"unix:///tmp/r.sock", REDIS_URL_UNIX, NULL, 0, "/tmp/r.sock", NULL, NULL,
     0, "unix:///tmp/r.sock"},
    {"unix:///tmp/r.sock?db=2", REDIS_URL_UNIX, NULL, 0, "/tmp/r.sock", NULL,
     NULL, 2, "unix:///tmp/r.sock?db=2"},
    {"unix:/run/redis/redis-server.sock", REDIS_URL_UNIX, NULL, 0,
     "/run/redis/redis-server.sock", NULL, NULL, 0,
     "unix:///run/redis/redis-server.sock"},
    {"unix://:pw@/tmp/a@b.sock", REDIS_URL_UNIX, NULL, 0, "/tmp/a@b.sock", NULL,
     "pw", 0, "unix:///tmp/a@b.sock"},
    {"unix://bob:pw@/s?db=1", REDIS_URL_UNIX, NULL, 0, "/s", "bob", "pw", 1,
     "unix://bob@/s?db=1"},
    {"unix:///tmp/a@b.sock", REDIS_URL_UNIX, NULL, 0, "/tmp/a@b.sock", NULL,
     NULL, 0, "unix:///tmp/a@b.sock"},
};

struct bad {
	const char *url;
	const char *want; /* a substring of the message */
};

#define LONG_PATH                                                              \
	"unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"   \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct bad bads[] = {
    {"", "redis url: empty address"},
    {"localhost:6379", "expected redis://host[:port][/db] or unix://"},
    {"http://h", "expected redis://"},
    {"REDIS://h", "expected redis://"},
    {"rediss://:secret@h:6380", "rediss:// (TLS) is not supported"},
    {"rediss://h", "stunnel"},
    {"redis://", "empty host"},
    {"redis://:6379", "empty host"},
    {"redis://:secret@", "empty host"},
    {"redis://h:0", "bad port \"0\""},
    {"redis://h:65536", "bad port \"65536\""},
    {"redis://h:99999999999999", "bad port"},
    {"redis://h:x", "redis url: bad port \"x\" (expected 1 to 65535) in "
		    "\"redis://h:x\""},
    {"redis://h:", "bad port \"\""},
    {"redis://h:-1", "bad port \"-1\""},
    {"redis://h:+1", "bad port \"+1\""},
    {"redis://h/x", "bad database \"x\" (expected a number)"},
    {"redis://h/1/2", "bad database \"1/2\""},
    {"redis://h/-1", "bad database"},
    {"redis://h/99999999999", "bad database"},
    {"redis://h#frag", "unexpected \"#frag\""},
    {"redis://h?foo=1", "unknown parameter \"foo\""},
    {"redis://h?db=", "bad database \"\""},
    {"redis://h/1?db=2", "database given twice"},
    {"redis://h ost", "space or control character in \"redis://h_ost\""},
    {"redis://h\tost", "space or control character"},
    {"redis://h_o$t", "bad host \"h_o$t\""},
    {"redis://::1:6379", "IPv6 addresses need brackets"},
    {"redis://fe80::1", "IPv6 addresses need brackets"},
    {"redis://[::1", "missing \"]\""},
    {"redis://[]:1", "bad IPv6 address \"\""},
    {"redis://[zz]:1", "bad IPv6 address \"zz\""},
    {"redis://[::1]x", "unexpected \"x\""},
    {"redis://[::1]:0", "bad port"},
    {"redis://secret@h", "credentials must be user:password or :password"},
    {"redis://bob:@h", "user without a password"},
    {"redis://:bad%zzsecret@h", "bad percent-escape in the password"},
    {"redis://:secret%00x@h", "bad percent-escape in the password"},
    {"redis://:secret%@h", "bad percent-escape in the password"},
    {"redis://:secret%4@h", "bad percent-escape in the password"},
    {"redis://b%g:secret@h", "bad percent-escape in the user name"},
    {"redis://user:secret@h:99999", "bad port \"99999\" (expected 1 to "
				    "65535) in \"redis://***@h:99999\""},
    {"unix://", "a socket path must be absolute"},
    {"unix:relative.sock", "a socket path must be absolute"},
    {"unix://host/tmp/x", "a socket path must be absolute"},
    {"unix:///", "empty socket path"},
    {"unix:///?db=1", "empty socket path"},
    {"unix:///tmp/x?db=a", "bad database \"a\""},
    {"unix:///tmp/x?password=secret", "unknown parameter \"password\""},
    {"unix://:secret@/tmp/x?db=", "bad database"},
    {"unix:///tmp/x?db=1&password=secret", "only one parameter"},
    {"redis://h?password=secret&db=1", "unknown parameter \"password\""},
    {"unix://secret@/tmp/x", "credentials must be"},
    {LONG_PATH, "is longer than 107 bytes"},
};

static void check_str(const char *url, const char *field, const char *got,
		      const char *want)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: %s is \"%s\", expected \"%s\"", url, field,
			 got != NULL ? got : "(null)",
			 want != NULL ? want : "(null)");
}

static void check_int(const char *url, const char *field, int got, int want)
{
	if (got != want)
		fail_msg("%s: %s is %d, expected %d", url, field, got, want);
}

static void test_good_urls(void **state)
{
	struct redis_url u;
	char err[512];
	size_t i;
	char *shown;

	(void)state;
	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];

		if (redis_url_parse(g->url, &u, err, sizeof(err)) != 0)
			fail_msg("%s: %s", g->url, err);
		check_int(g->url, "kind", u.kind, g->kind);
		check_str(g->url, "host", u.host, g->host);
		if (g->kind == REDIS_URL_TCP)
			check_int(g->url, "port", u.port, g->port);
		check_str(g->url, "path", u.path, g->path);
		check_str(g->url, "user", u.user, g->user);
		check_str(g->url, "password", u.password, g->password);
		check_int(g->url, "db", u.db, g->db);
		shown = redis_url_display(&u);
		check_str(g->url, "display", shown, g->display);
		if (g->password != NULL)
			assert_null(strstr(shown, g->password));
		free(shown);
		redis_url_release(&u);
		assert_null(u.host);
		assert_null(u.password);
	}
}

static void test_bad_urls(void **state)
{
	static const struct redis_url zero;
	struct redis_url u;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];

		err[0] = '\0';
		assert_int_equal(redis_url_parse(b->url, &u, err, sizeof(err)),
				 -1);
		if (strstr(err, b->want) == NULL)
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", b->url,
				 err, b->want);
		assert_true(strncmp(err, "redis url: ", 11) == 0);
		assert_null(strchr(err, '\n'));
		assert_null(strstr(err, "secret"));
		assert_memory_equal(&u, &zero, sizeof(zero));
	}
}

static void test_null_and_small_err(void **state)
{
	struct redis_url u;
	char err[6];

	(void)state;
	assert_int_equal(redis_url_parse(NULL, &u, err, sizeof(err)), -1);
	assert_string_equal(err, "redis");
	assert_int_equal(redis_url_parse("nope", &u, NULL, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_urls),
	    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_null_and_small_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
