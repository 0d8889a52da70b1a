/* hwm.c -- a preload library for the benchmark's footprint figure
 * (bench/README.md): when a process exits normally it appends
 * "<pid> <comm> <VmHWM kB> <VmRSS kB>\n" to the file named by
 * TFBENCH_HWM_FILE. Its peak resident set is then read at the very end of
 * its life, which sampling /proc from outside can miss, and without the
 * children that getrusage(RUSAGE_CHILDREN) would fold in. Built as a shared
 * object and used through LD_PRELOAD; does nothing without the variable. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The number after "<name>:" in /proc/self/status, in kB, or -1. */
static long status_kb(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	char *end;
	long v;

	if (p == NULL)
		return -1;
	p += strlen(name);
	v = strtol(p, &end, 10);
	return end == p ? -1 : v;
}

__attribute__((destructor)) static void hwm_report(void)
{
	const char *path = getenv("TFBENCH_HWM_FILE");
	char status[8192], comm[64], line[160];
	ssize_t n;
	int fd = -1, out = -1, len;

	if (path == NULL || path[0] == '\0')
		return;
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	n = read(fd, status, sizeof(status) - 1);
	if (n <= 0)
		goto out;
	status[n] = '\0';
	comm[0] = '\0';
	if (strncmp(status, "Name:\t", 6) == 0) {
		size_t l = strcspn(status + 6, "\n");

		if (l >= sizeof(comm))
			l = sizeof(comm) - 1;
		memcpy(comm, status + 6, l);
		comm[l] = '\0';
	}
	len = snprintf(line, sizeof(line), "%ld %s %ld %ld\n", (long)getpid(),
		       comm[0] ? comm : "?", status_kb(status, "VmHWM:"),
		       status_kb(status, "VmRSS:"));
	if (len < 0 || (size_t)len >= sizeof(line))
		goto out;
	out = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (out < 0)
		goto out;
	if (write(out, line, (size_t)len) != len) {
		/* Nothing to do about it on the way out. */
	}
out:
	if (out >= 0)
		close(out);
	if (fd >= 0)
		close(fd);
}
