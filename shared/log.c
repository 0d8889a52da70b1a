/* log.c -- leveled logging to stderr (see log.h). Lines read
 * "prog: level: message"; at debug level each line starts with a UTC
 * timestamp with milliseconds so interleaved workers can be ordered. The
 * settings are process-wide: logging is the one place a global is cheaper
 * than threading a context through every call. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "testfleet";
static enum log_level log_level_cur = LOG_INFO;

static const char *const log_names[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info",	  [LOG_WARN] = "warn",
    [LOG_ERROR] = "error", [LOG_QUIET] = "quiet",
};

void log_init(const char *prog, enum log_level level)
{
	if (prog != NULL) {
		const char *slash = strrchr(prog, '/');

		log_prog = slash != NULL ? slash + 1 : prog;
	}
	log_set_level(level);
}

void log_set_level(enum log_level level)
{
	if (level < LOG_DEBUG || level > LOG_QUIET)
		level = LOG_INFO;
	log_level_cur = level;
}

enum log_level log_get_level(void)
{
	return log_level_cur;
}

int log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[4096];
	char stamp[40] = "";
	va_list ap;
	size_t n;

	if (level < log_level_cur || level >= LOG_QUIET || level < LOG_DEBUG)
		return;
	if (log_level_cur == LOG_DEBUG) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ ",
			 (long)(ts.tv_nsec / 1000000));
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One line per message: fold embedded newlines. */
	for (n = 0; line[n] != '\0'; n++) {
		if (line[n] == '\n' || line[n] == '\r')
			line[n] = ' ';
	}
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	fprintf(stderr, "%s%s: %s: %s\n", stamp, log_prog, log_names[level],
		line);
}
