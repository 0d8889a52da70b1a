/* cpus.c -- how many CPUs this process may use (see cpus.h). */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#define CPUS_CGROUP_MAX "/sys/fs/cgroup/cpu.max"

unsigned usable_cpus(void)
{
	cpu_set_t set;
	unsigned n = 0;
	long long quota, period;
	FILE *f;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = (unsigned)CPU_COUNT(&set);
	if (n == 0) {
		long k = sysconf(_SC_NPROCESSORS_ONLN);

		n = k > 0 ? (unsigned)k : 1;
	}
	f = fopen(CPUS_CGROUP_MAX, "r");
	if (f) {
		/* "max 100000" (no limit) does not scan. */
		if (fscanf(f, "%lld %lld", &quota, &period) == 2 &&
		    quota > 0 && period > 0 &&
		    (quota + period - 1) / period < (long long)n)
			n = (unsigned)((quota + period - 1) / period);
		fclose(f);
	}
	return n ? n : 1;
}
