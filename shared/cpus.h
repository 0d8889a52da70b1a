/* cpus.h -- how many CPUs this process may use. */
#ifndef TF_CPUS_H
#define TF_CPUS_H

/* The CPUs of the affinity mask, and no more than a cgroup v2 CPU quota
 * ("cpu.max": "200000 100000" is two), as a container with a CPU limit
 * has. At least 1. */
unsigned usable_cpus(void);

#endif
