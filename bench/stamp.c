/* stamp.c -- the dispatch-latency probe of the benchmark (bench/README.md):
 * a runner command that appends "<task id> <unix time in ns>\n" to the file
 * it is given, reading the clock first thing, so the time it records is as
 * close as a program can get to "the runner started". The task id comes
 * from TESTFLEET_TASK, which the worker sets for every runner. Linked
 * statically so the dynamic loader does not stand between exec and the
 * clock. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts;
	const char *task;
	char line[256];
	int fd = -1, n, rc = 1;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (argc != 2) {
		fputs("usage: stamp FILE\n", stderr);
		return 2;
	}
	task = getenv("TESTFLEET_TASK");
	if (task == NULL || task[0] == '\0')
		task = "-";
	n = snprintf(line, sizeof(line), "%.200s %lld\n", task,
		     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		goto out;
	}
	/* One write of a short line to an O_APPEND file: concurrent stamps
	 * never interleave. */
	if (write(fd, line, (size_t)n) != n) {
		perror(argv[1]);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
