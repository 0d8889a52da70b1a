/* redisurl.h -- parsing of Redis addresses: redis://[user:pass@]host:port/db
 * and unix:///path/to.sock[?db=N]. Pure: no sockets. */
#ifndef TF_REDISURL_H
#define TF_REDISURL_H

#include <stddef.h>

enum redis_url_kind { REDIS_URL_TCP, REDIS_URL_UNIX };

struct redis_url {
	enum redis_url_kind kind;
	char *host;     /* TCP: host name or address ([v6] brackets stripped) */
	int port;       /* TCP: default 6379 */
	char *path;     /* UNIX: socket path */
	char *user;     /* NULL when absent (AUTH with password only) */
	char *password; /* NULL when absent; percent-decoded */
	int db;         /* default 0 */
};

/* Parses s into out (zeroed first). Returns 0, or -1 with a one-line message
 * in err ("redis url: bad port \"x\" in \"redis://h:x\""). The password is
 * never copied into err. Caller releases out on success. */
int redis_url_parse(const char *s, struct redis_url *out, char *err,
		    size_t errlen);
void redis_url_release(struct redis_url *u);
/* The URL without its password, for logs and messages; caller frees. */
char *redis_url_display(const struct redis_url *u);

#endif
