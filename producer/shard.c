/* shard.c -- test ids to tasks (see shard.h). Estimates are handled as
 * integer microseconds so that sums, comparisons and therefore the plan are
 * exact and the same on every machine. */
#include "shard.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pwid.h"
#include "xmalloc.h"

#define SHARD_MAX_COUNT 1000000u
/* Pairs of units shard_refine may look at, for one plan: at most a few
 * hundredths of a second (enough for the whole job on 50,000 tests and 64
 * slots; a little for 200,000 tests on 1,000 slots). */
#define SHARD_REFINE_WORK 10000000u

/* A growing list of test indexes: a task in the making. */
struct shard_acc {
	size_t *idx;
	size_t n;
	size_t cap;
	uint64_t us;
};

/* What the comparators below need to see. */
struct shard_input {
	char *const *ids;
	const uint64_t *us;
	size_t *flen; /* file part length of each id */
};

int shard_mode_parse(const char *s, struct shard_mode *out, char *err,
		     size_t errlen)
{
	unsigned long n;
	char *end;

	memset(out, 0, sizeof(*out));
	if (strcmp(s, "auto") == 0) {
		out->kind = SHARD_AUTO;
		return 0;
	}
	if (strcmp(s, "file") == 0) {
		out->kind = SHARD_FILE;
		return 0;
	}
	if (strcmp(s, "test") == 0) {
		out->kind = SHARD_TEST;
		return 0;
	}
	if (strncmp(s, "count:", 6) == 0 && s[6] >= '0' && s[6] <= '9') {
		errno = 0;
		n = strtoul(s + 6, &end, 10);
		if (errno == 0 && *end == '\0' && n >= 1 &&
		    n <= SHARD_MAX_COUNT) {
			out->kind = SHARD_COUNT;
			out->count = (unsigned)n;
			return 0;
		}
	}
	snprintf(err, errlen,
		 "bad shard mode \"%s\" (expected auto, file, test or "
		 "count:N with 1 <= N <= %u)",
		 s, SHARD_MAX_COUNT);
	return -1;
}

size_t shard_file_len(const char *id)
{
	size_t pw;
	const char *sep;

	if (id == NULL)
		return 0;
	pw = pwid_file_len(id);

	/* A title may hold "::"; a file part that does is a pytest id. */
	if (pw > 0 && memmem(id, pw, "::", 2) == NULL)
		return pw;
	sep = strstr(id, "::");
	return sep != NULL ? (size_t)(sep - id) : strlen(id);
}

static uint64_t shard_to_us(double s)
{
	if (!isfinite(s) || s < 0)
		s = SHARD_DEFAULT_TEST_S;
	/* 11 days per test: ten million such tests still sum within
	 * 64 bits of microseconds. */
	if (s > 1e6)
		s = 1e6;
	return (uint64_t)llround(s * 1e6);
}

static void shard_acc_add(struct shard_acc *a, size_t idx, uint64_t us)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->idx = xreallocarray(a->idx, a->cap, sizeof(*a->idx));
	}
	a->idx[a->n++] = idx;
	a->us += us;
}

static int shard_cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* Moves the accumulated tests into a new task of the plan. */
static void shard_acc_flush(struct shard_acc *a, struct shard_plan *p,
			    size_t *cap)
{
	struct shard_task *t;

	if (a->n == 0)
		return;
	if (p->ntasks == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		p->tasks = xreallocarray(p->tasks, *cap, sizeof(*p->tasks));
	}
	t = &p->tasks[p->ntasks++];
	qsort(a->idx, a->n, sizeof(*a->idx), shard_cmp_size);
	t->tests = xreallocarray(a->idx, a->n, sizeof(*a->idx));
	t->ntests = a->n;
	t->estimate_s = (double)a->us / 1e6;
	memset(a, 0, sizeof(*a));
}

/* By file part, then collection order: brings each file's tests together
 * without reordering them. */
static int shard_cmp_file(const void *a, const void *b, void *arg)
{
	const struct shard_input *in = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	size_t lx = in->flen[x], ly = in->flen[y];
	int c = memcmp(in->ids[x], in->ids[y], lx < ly ? lx : ly);

	if (c != 0)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Longest first, then collection order. */
static int shard_cmp_est_desc(const void *a, const void *b, void *arg)
{
	const struct shard_input *in = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	uint64_t ex = in->us[x], ey = in->us[y];

	if (ex != ey)
		return ex > ey ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int shard_cmp_task(const void *a, const void *b)
{
	const struct shard_task *x = a, *y = b;

	if (x->estimate_s != y->estimate_s)
		return x->estimate_s > y->estimate_s ? -1 : 1;
	return x->tests[0] < y->tests[0] ? -1 : x->tests[0] > y->tests[0];
}

/* Groups of one file's tests: a run [start, start+len) of the order array
 * (sorted by file, then collection index); first is the collection index
 * of the group's first test. */
struct shard_group {
	size_t start;
	size_t len;
	size_t first;
	uint64_t us;
};

static int shard_cmp_group(const void *a, const void *b)
{
	const struct shard_group *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Splits the ids into per-file groups, in the order their files first
 * appear. order (n entries) receives the indexes sorted by file. */
static struct shard_group *shard_groups(const struct shard_input *in, size_t n,
					size_t *order, size_t *ngroups)
{
	struct shard_group *g = NULL;
	size_t i, ng = 0, cap = 0;

	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), shard_cmp_file, (void *)in);
	for (i = 0; i < n; i++) {
		size_t x = order[i];
		int same = 0;

		if (i > 0) {
			size_t y = order[i - 1];

			same = in->flen[x] == in->flen[y] &&
			       memcmp(in->ids[x], in->ids[y], in->flen[x]) == 0;
		}
		if (!same) {
			if (ng == cap) {
				cap = cap ? cap * 2 : 16;
				g = xreallocarray(g, cap, sizeof(*g));
			}
			g[ng].start = i;
			g[ng].len = 0;
			g[ng].first = x;
			g[ng].us = 0;
			ng++;
		}
		g[ng - 1].len++;
		g[ng - 1].us += in->us[x];
	}
	if (ng > 1)
		qsort(g, ng, sizeof(*g), shard_cmp_group);
	*ngroups = ng;
	return g;
}

static void shard_by_test(const struct shard_input *in, size_t n,
			  struct shard_plan *p, size_t *cap)
{
	struct shard_acc a = {0};
	size_t i;

	for (i = 0; i < n; i++) {
		shard_acc_add(&a, i, in->us[i]);
		shard_acc_flush(&a, p, cap);
	}
}

static void shard_by_file(const struct shard_input *in, size_t n,
			  struct shard_plan *p, size_t *cap)
{
	struct shard_acc a = {0};
	struct shard_group *g;
	size_t *order = xcalloc(n, sizeof(*order));
	size_t ng, i, j;

	g = shard_groups(in, n, order, &ng);
	for (i = 0; i < ng; i++) {
		for (j = 0; j < g[i].len; j++) {
			size_t x = order[g[i].start + j];

			shard_acc_add(&a, x, in->us[x]);
		}
		shard_acc_flush(&a, p, cap);
	}
	free(g);
	free(order);
}

/* LPT: tests longest first, each onto the least-loaded bin (lowest bin
 * number on ties). A binary min-heap of bins keyed by (load, number). */
static int shard_bin_less(const struct shard_acc *bins, size_t a, size_t b)
{
	if (bins[a].us != bins[b].us)
		return bins[a].us < bins[b].us;
	return a < b;
}

static void shard_heap_down(size_t *heap, size_t nh,
			    const struct shard_acc *bins, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i, tmp;

		if (l < nh && shard_bin_less(bins, heap[l], heap[m]))
			m = l;
		if (r < nh && shard_bin_less(bins, heap[r], heap[m]))
			m = r;
		if (m == i)
			return;
		tmp = heap[i];
		heap[i] = heap[m];
		heap[m] = tmp;
		i = m;
	}
}

static void shard_by_count(const struct shard_input *in, size_t n,
			   unsigned count, struct shard_plan *p, size_t *cap)
{
	size_t nb = count < n ? count : n;
	struct shard_acc *bins = xcalloc(nb, sizeof(*bins));
	size_t *heap = xcalloc(nb, sizeof(*heap));
	size_t *order = xcalloc(n, sizeof(*order));
	size_t i;

	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), shard_cmp_est_desc, (void *)in);
	/* All loads start at 0, so bin order is already a valid heap. */
	for (i = 0; i < nb; i++)
		heap[i] = i;
	for (i = 0; i < n; i++) {
		size_t b = heap[0];

		shard_acc_add(&bins[b], order[i], in->us[order[i]]);
		shard_heap_down(heap, nb, bins, 0);
	}
	for (i = 0; i < nb; i++)
		shard_acc_flush(&bins[i], p, cap);
	free(order);
	free(heap);
	free(bins);
}

/* The target size of an "auto" task: a quarter of a slot's share of the
 * work (SHARD_TASKS_PER_SLOT tasks a slot, so the slots finish together),
 * but never below SHARD_MIN_TASK_STARTUPS start-ups of `slots` tasks
 * starting at once (start-up would dominate) -- unless that would leave
 * slots idle, in which case one slot's share. */
static uint64_t shard_auto_target(uint64_t total, unsigned slots,
				  const struct shard_startup *st)
{
	uint64_t by_count = total / ((uint64_t)slots * SHARD_TASKS_PER_SLOT);
	uint64_t per_slot = total / slots;
	uint64_t floor_us =
	    shard_to_us(SHARD_MIN_TASK_STARTUPS * shard_startup_at(st, slots));
	uint64_t target;

	if (floor_us > per_slot)
		floor_us = per_slot;
	target = by_count > floor_us ? by_count : floor_us;
	return target > 0 ? target : 1;
}

/* The units of an "auto" plan built from history: kept apart, then packed
 * by LPT (shard_auto_lpt) instead of next fit. */
struct shard_units {
	struct shard_acc *u;
	size_t n;
	size_t cap;
};

/* Moves a unit into the list; empties it. */
static void shard_units_take(struct shard_units *l, struct shard_acc *unit)
{
	if (unit->n == 0)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->u = xreallocarray(l->u, l->cap, sizeof(*l->u));
	}
	l->u[l->n++] = *unit;
	memset(unit, 0, sizeof(*unit));
}

/* Appends a finished unit (a small file or a chunk of a big one) to the
 * task being packed, closing that task first when the unit would push it
 * past target (next fit) -- or, when units is not NULL, moves it to that
 * list. Empties the unit. */
static void shard_pack_unit(struct shard_acc *task, struct shard_acc *unit,
			    uint64_t target, const uint64_t *us,
			    struct shard_units *units, struct shard_plan *p,
			    size_t *cap)
{
	size_t k;

	if (unit->n == 0)
		return;
	if (units != NULL) {
		shard_units_take(units, unit);
		return;
	}
	if (task->n > 0 && task->us + unit->us > target)
		shard_acc_flush(task, p, cap);
	for (k = 0; k < unit->n; k++)
		shard_acc_add(task, unit->idx[k], us[unit->idx[k]]);
	free(unit->idx);
	memset(unit, 0, sizeof(*unit));
}

/* Packs one file's tests (tests[0..len), estimate F in all, each below
 * target) as units: the whole file when F <= target, else ceil(F/target)
 * contiguous chunks of about equal estimate. */
static void shard_auto_file(const struct shard_input *in, const size_t *tests,
			    size_t len, uint64_t f, uint64_t target,
			    struct shard_acc *task, struct shard_units *units,
			    struct shard_plan *p, size_t *cap)
{
	struct shard_acc unit = {0};
	uint64_t chunks = (f + target - 1) / target;
	uint64_t cum = 0, chunk = 0;
	size_t j;

	if (chunks == 0)
		chunks = 1;
	for (j = 0; j < len; j++) {
		size_t x = tests[j];
		uint64_t e = in->us[x];
		/* End of the current chunk, F * (chunk+1) / chunks without
		 * overflow; a chunk closes before a test whose midpoint lies
		 * past it. */
		uint64_t bound = f / chunks * (chunk + 1) +
				 f % chunks * (chunk + 1) / chunks;

		if (unit.n > 0 && chunk + 1 < chunks && cum + e / 2 > bound) {
			shard_pack_unit(task, &unit, target, in->us, units, p,
					cap);
			chunk++;
		}
		shard_acc_add(&unit, x, e);
		cum += e;
	}
	shard_pack_unit(task, &unit, target, in->us, units, p, cap);
}

/* Longest unit first, then the one whose first test comes first. */
static int shard_cmp_unit(const void *a, const void *b, void *arg)
{
	const struct shard_units *l = arg;
	const struct shard_acc *x = &l->u[*(const size_t *)a];
	const struct shard_acc *y = &l->u[*(const size_t *)b];

	if (x->us != y->us)
		return x->us > y->us ? -1 : 1;
	return x->idx[0] < y->idx[0] ? -1 : x->idx[0] > y->idx[0];
}

/* The latest end LPT makes of the units (order: longest first) with nb
 * tasks, task k starting at ready[k] (ascending). Only the loads matter
 * here: which of two equally loaded tasks a unit goes to leaves the same
 * loads. heap: nb entries of scratch. */
static uint64_t shard_lpt_longest(const struct shard_units *l,
				  const size_t *order, size_t nb,
				  const uint64_t *ready, uint64_t *heap)
{
	uint64_t longest = 0;
	size_t i;

	/* A min-heap of ends; ascending is a valid heap. */
	for (i = 0; i < nb; i++)
		heap[i] = ready[i];
	for (i = 0; i < l->n; i++) {
		size_t k = 0;

		heap[0] += l->u[order[i]].us;
		for (;;) {
			size_t a = 2 * k + 1, b = a + 1, m = k;
			uint64_t tmp;

			if (a < nb && heap[a] < heap[m])
				m = a;
			if (b < nb && heap[b] < heap[m])
				m = b;
			if (m == k)
				break;
			tmp = heap[k];
			heap[k] = heap[m];
			heap[m] = tmp;
			k = m;
		}
	}
	for (i = 0; i < nb; i++)
		if (heap[i] > longest)
			longest = heap[i];
	return longest;
}

/* The task counts tried: every count up to 128, then steps of about 3 %
 * (the expected makespan changes smoothly there), and max itself. */
static size_t shard_next_count(size_t t, size_t max)
{
	size_t next = t < 128 ? t + 1 : t + t / 32;

	if (t < max && next > max)
		next = max;
	return next;
}

/* How many tasks to pack the units into: the T <= min(slots, units)
 * minimising the expected makespan when the T tasks start at once --
 * shard_startup_at(T) plus the longest task LPT makes -- and of the
 * counts within SHARD_AUTO_TOLERANCE_PCT % of that least value the
 * smallest: a task more costs a start-up of CPU for next to nothing. A
 * count whose lower bound (its start-up plus max(total / T, longest unit))
 * is no better than the best so far is not packed: it cannot be picked. */
static size_t shard_auto_count(const struct shard_units *l, const size_t *order,
			       unsigned slots, const struct shard_startup *st,
			       uint64_t total)
{
	size_t maxb = slots < l->n ? slots : l->n;
	uint64_t *heap = xcalloc(maxb, sizeof(*heap));
	uint64_t *ready = xcalloc(maxb, sizeof(*ready));
	uint64_t *pred = xcalloc(maxb + 1, sizeof(*pred));
	uint64_t best = UINT64_MAX, unit = l->u[order[0]].us, limit;
	size_t t, k, pick = maxb;

	for (t = 1; t <= maxb; t = shard_next_count(t, maxb)) {
		uint64_t su = shard_to_us(shard_ready_at(st, t, 0));
		uint64_t share = total / t + (total % t != 0);
		uint64_t lb = su + (share > unit ? share : unit);

		pred[t] = UINT64_MAX;
		if (lb >= best)
			continue;
		for (k = 0; k < t; k++)
			ready[k] = shard_to_us(shard_ready_at(st, t, k));
		pred[t] = shard_lpt_longest(l, order, t, ready, heap);
		if (pred[t] < best)
			best = pred[t];
	}
	limit = best + best / 100 * SHARD_AUTO_TOLERANCE_PCT;
	for (t = 1; t <= maxb; t = shard_next_count(t, maxb)) {
		if (pred[t] <= limit) {
			pick = t;
			break;
		}
	}
	free(pred);
	free(ready);
	free(heap);
	return pick;
}

/* The task with the most work (the lowest number on ties). */
static size_t shard_busiest(const struct shard_acc *bins, size_t nb)
{
	size_t m = 0, i;

	for (i = 1; i < nb; i++)
		if (bins[i].us > bins[m].us)
			m = i;
	return m;
}

/* Evens out an LPT packing: while moving a unit of the busiest task to
 * the least-loaded one, or swapping it with a smaller unit of another
 * task, leaves both below the busiest task's load, the step that leaves
 * the lower of the two maxima is taken (the first found on ties: units
 * and tasks in number order). Every step lowers the busiest load or the
 * number of tasks carrying it, so it ends; SHARD_REFINE_WORK bounds the
 * pairs looked at. No task is emptied (a unit alone in the busiest task
 * cannot go anywhere cheaper). bins: loads only (us); bin_of: the task
 * of each unit. */
static void shard_refine(const struct shard_units *l, size_t *bin_of,
			 struct shard_acc *bins, size_t nb)
{
	uint64_t work = 0;

	while (work < SHARD_REFINE_WORK) {
		size_t m = shard_busiest(bins, nb), low = 0, u, v, i;
		size_t bu = SIZE_MAX, bv = SIZE_MAX;
		uint64_t lm = bins[m].us, best = lm;

		for (i = 1; i < nb; i++)
			if (bins[i].us < bins[low].us)
				low = i;
		for (u = 0; u < l->n; u++) {
			uint64_t su = l->u[u].us, t;

			if (bin_of[u] != m || su == 0)
				continue;
			/* Move: the least-loaded task is the best target. */
			t = bins[low].us + su;
			if (low != m && t < best) {
				best = t > lm - su ? t : lm - su;
				bu = u;
				bv = SIZE_MAX;
			}
			/* Swap with a smaller unit elsewhere. */
			for (v = 0; v < l->n; v++) {
				uint64_t sv = l->u[v].us, a, b;

				if (bin_of[v] == m || sv >= su)
					continue;
				a = lm - su + sv;
				b = bins[bin_of[v]].us - sv + su;
				if (a < best && b < best) {
					best = a > b ? a : b;
					bu = u;
					bv = v;
				}
			}
			work += l->n;
		}
		if (bu == SIZE_MAX)
			return;
		if (bv == SIZE_MAX) {
			bins[m].us -= l->u[bu].us;
			bins[low].us += l->u[bu].us;
			bin_of[bu] = low;
		} else {
			size_t o = bin_of[bv];

			bins[m].us = bins[m].us - l->u[bu].us + l->u[bv].us;
			bins[o].us = bins[o].us - l->u[bv].us + l->u[bu].us;
			bin_of[bu] = o;
			bin_of[bv] = m;
		}
	}
}

/* Packs the units (order: longest first) into nb tasks by LPT: longest
 * unit first onto the task that ends first (lowest task number on ties);
 * then shard_refine. Task k starts at shard_ready_at(k): its start counts
 * as a load that no unit can leave. Frees the units. */
static void shard_auto_lpt(const struct shard_input *in, struct shard_units *l,
			   const size_t *order, size_t nb,
			   const struct shard_startup *st, struct shard_plan *p,
			   size_t *cap)
{
	struct shard_acc *bins = xcalloc(nb, sizeof(*bins));
	size_t *heap = xcalloc(nb, sizeof(*heap));
	size_t *bin_of = xcalloc(l->n, sizeof(*bin_of));
	size_t i, k;

	/* Only the differences matter: task 0's start is the zero. */
	for (k = 0; k < nb; k++)
		bins[k].us = shard_to_us(shard_ready_at(st, nb, k)) -
			     shard_to_us(shard_ready_at(st, nb, 0));

	/* Loads first: the nb longest units open the nb tasks (what LPT
	 * does anyway, but also for units of 0 s: no task stays empty). */
	for (i = 0; i < l->n; i++) {
		size_t b = i < nb ? i : heap[0];

		bin_of[order[i]] = b;
		bins[b].us += l->u[order[i]].us;
		if (i + 1 == nb) {
			for (k = 0; k < nb; k++)
				heap[k] = k;
			for (k = nb / 2; k-- > 0;)
				shard_heap_down(heap, nb, bins, k);
		} else if (i >= nb) {
			shard_heap_down(heap, nb, bins, 0);
		}
	}
	shard_refine(l, bin_of, bins, nb);
	/* Then the tests; shard_acc_flush puts each task's tests in
	 * collection order. */
	for (i = 0; i < nb; i++)
		bins[i].us = 0;
	for (i = 0; i < l->n; i++) {
		const struct shard_acc *u = &l->u[i];

		for (k = 0; k < u->n; k++)
			shard_acc_add(&bins[bin_of[i]], u->idx[k],
				      in->us[u->idx[k]]);
	}
	for (i = 0; i < nb; i++)
		shard_acc_flush(&bins[i], p, cap);
	for (i = 0; i < l->n; i++)
		free(l->u[i].idx);
	free(l->u);
	memset(l, 0, sizeof(*l));
	free(bin_of);
	free(heap);
	free(bins);
}

/* With history: the units packed by LPT into shard_auto_count() tasks. */
static void shard_auto_pack(const struct shard_input *in, struct shard_units *l,
			    unsigned slots, const struct shard_startup *st,
			    uint64_t total, struct shard_plan *p, size_t *cap)
{
	size_t *order, i;

	if (l->n == 0)
		return;
	order = xcalloc(l->n, sizeof(*order));
	for (i = 0; i < l->n; i++)
		order[i] = i;
	qsort_r(order, l->n, sizeof(*order), shard_cmp_unit, l);
	shard_auto_lpt(in, l, order,
		       shard_auto_count(l, order, slots, st, total), st, p,
		       cap);
	free(order);
}

/* Auto: a file at most `target` long is one unit. In a longer file, every
 * test of at least `target` becomes a unit (a task) of its own, and the
 * rest of the file is cut into contiguous chunks of about equal estimate,
 * at most `target` each. Without history (known false) units are packed in
 * collection order (next fit) into tasks of at most `target`. With history,
 * the target is a finer total / (slots * SHARD_AUTO_UNITS_PER_SLOT) and the
 * units are packed by LPT into the number of tasks, at most one per slot,
 * with the least expected makespan (shard_auto_count). */
static void shard_auto(const struct shard_input *in, size_t n, unsigned slots,
		       int known, const struct shard_startup *st,
		       struct shard_plan *p, size_t *cap)
{
	struct shard_acc task = {0};
	struct shard_units list = {0};
	struct shard_units *units = known ? &list : NULL;
	struct shard_group *g;
	size_t *order = xcalloc(n, sizeof(*order));
	size_t *small = xcalloc(n, sizeof(*small));
	uint64_t total = 0, target;
	size_t ng, i, j;

	for (i = 0; i < n; i++)
		total += in->us[i];
	if (known) {
		target = total / ((uint64_t)slots * SHARD_AUTO_UNITS_PER_SLOT);
		if (target == 0)
			target = 1;
	} else {
		target = shard_auto_target(total, slots, st);
	}
	g = shard_groups(in, n, order, &ng);
	for (i = 0; i < ng; i++) {
		const size_t *tests = order + g[i].start;
		uint64_t small_us = 0;
		size_t nsmall = 0;

		if (g[i].us <= target) {
			shard_auto_file(in, tests, g[i].len, g[i].us, target,
					&task, units, p, cap);
			continue;
		}
		for (j = 0; j < g[i].len; j++) {
			size_t x = tests[j];

			if (in->us[x] >= target) {
				struct shard_acc alone = {0};

				shard_acc_add(&alone, x, in->us[x]);
				if (units != NULL)
					shard_units_take(units, &alone);
				else
					shard_acc_flush(&alone, p, cap);
			} else {
				small[nsmall++] = x;
				small_us += in->us[x];
			}
		}
		if (nsmall > 0)
			shard_auto_file(in, small, nsmall, small_us, target,
					&task, units, p, cap);
	}
	shard_acc_flush(&task, p, cap);
	if (units != NULL)
		shard_auto_pack(in, units, slots, st, total, p, cap);
	free(g);
	free(small);
	free(order);
}

static int shard_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int shard_known(const double *est, size_t i)
{
	return est != NULL && isfinite(est[i]) && est[i] >= 0;
}

/* The median of the known estimates in microseconds, or the default. */
static uint64_t shard_unknown_us(const double *est, size_t n, size_t *nknown)
{
	uint64_t *v = NULL, med;
	size_t k = 0, i;

	if (est != NULL) {
		v = xcalloc(n ? n : 1, sizeof(*v));
		for (i = 0; i < n; i++)
			if (shard_known(est, i))
				v[k++] = shard_to_us(est[i]);
	}
	if (nknown != NULL)
		*nknown = k;
	if (k == 0) {
		free(v);
		return shard_to_us(SHARD_DEFAULT_TEST_S);
	}
	qsort(v, k, sizeof(*v), shard_cmp_u64);
	med = k % 2 ? v[k / 2]
		    : v[k / 2 - 1] / 2 + v[k / 2] / 2 +
			  (v[k / 2 - 1] % 2 + v[k / 2] % 2) / 2;
	free(v);
	return med;
}

double shard_unknown_estimate(const double *est, size_t n, size_t *nknown)
{
	return (double)shard_unknown_us(est, n, nknown) / 1e6;
}

double shard_startup_default(const char *runner)
{
	if (runner != NULL && strcmp(runner, "playwright") == 0)
		return SHARD_STARTUP_PLAYWRIGHT_S;
	return SHARD_STARTUP_S;
}

static double shard_nonneg(double x)
{
	return isfinite(x) && x > 0 ? x : 0;
}

double shard_ready_at(const struct shard_startup *s, size_t t, size_t k)
{
	size_t g = s != NULL && s->gate > 0 && s->gate < t ? s->gate : t;

	if (g == 0)
		g = 1;
	return shard_startup_at(s, (unsigned)g) * (double)(k / g + 1);
}

double shard_startup_at(const struct shard_startup *s, unsigned k)
{
	double v, lo, conc;

	if (k == 0)
		k = 1;
	if (s == NULL)
		return SHARD_STARTUP_S;
	if (!s->learned) {
		v = shard_nonneg(s->default_s);
	} else {
		conc = isfinite(s->concurrency) && s->concurrency >= 1
			   ? s->concurrency
			   : 1;
		v = shard_nonneg(s->overhead_s) * k / conc;
		lo = shard_nonneg(s->floor_s);
		if (lo > shard_nonneg(s->overhead_s))
			lo = shard_nonneg(s->overhead_s);
		if (v < lo)
			v = lo;
	}
	return v > 1e6 ? 1e6 : v;
}

void shard_plan_build(char *const *ids, const double *est, size_t n,
		      unsigned slots, struct shard_mode mode,
		      struct shard_plan *out)
{
	shard_plan_build_with(ids, est, n, slots, mode, NULL, out);
}

void shard_plan_build_with(char *const *ids, const double *est, size_t n,
			   unsigned slots, struct shard_mode mode,
			   const struct shard_startup *startup,
			   struct shard_plan *out)
{
	struct shard_input in;
	uint64_t *us, unknown;
	size_t *flen;
	size_t cap = 0, nknown, i;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return;
	if (slots == 0)
		slots = 1;
	us = xcalloc(n, sizeof(*us));
	flen = xcalloc(n, sizeof(*flen));
	unknown = shard_unknown_us(est, n, &nknown);
	for (i = 0; i < n; i++) {
		us[i] = shard_known(est, i) ? shard_to_us(est[i]) : unknown;
		flen[i] = shard_file_len(ids[i]);
	}
	in.ids = ids;
	in.us = us;
	in.flen = flen;
	switch (mode.kind) {
	case SHARD_TEST:
		shard_by_test(&in, n, out, &cap);
		break;
	case SHARD_FILE:
		shard_by_file(&in, n, out, &cap);
		break;
	case SHARD_COUNT:
		shard_by_count(&in, n, mode.count ? mode.count : 1, out, &cap);
		break;
	case SHARD_AUTO:
	default:
		/* nknown * 100 cannot overflow: n is an array length. */
		shard_auto(&in, n, slots,
			   (uint64_t)nknown * 100 >=
			       (uint64_t)n * SHARD_AUTO_KNOWN_PCT,
			   startup, out, &cap);
		break;
	}
	qsort(out->tasks, out->ntasks, sizeof(*out->tasks), shard_cmp_task);
	out->startup_s = shard_startup_at(
	    startup, out->ntasks < slots ? (unsigned)out->ntasks : slots);
	if (startup != NULL) {
		out->st = *startup;
		out->gate = startup->gate;
	} else {
		out->st.default_s = SHARD_STARTUP_S;
	}
	free(flen);
	free(us);
}

void shard_plan_release(struct shard_plan *p)
{
	size_t i;

	for (i = 0; i < p->ntasks; i++)
		free(p->tasks[i].tests);
	free(p->tasks);
	memset(p, 0, sizeof(*p));
}

double shard_eta(const double *task_s, size_t n, unsigned slots)
{
	return shard_eta_with(task_s, NULL, n, slots);
}

double shard_eta_with(const double *task_s, const double *startup_s, size_t n,
		      unsigned slots)
{
	double *load, end = 0;
	size_t ns, i;

	if (n == 0)
		return 0;
	if (slots == 0)
		slots = 1;
	ns = slots < n ? slots : n;
	/* A min-heap of slot loads; all zero is a valid heap. */
	load = xcalloc(ns, sizeof(*load));
	for (i = 0; i < n; i++) {
		double d = shard_nonneg(task_s[i]);
		size_t k = 0;

		load[0] += d + (startup_s != NULL ? shard_nonneg(startup_s[i])
						  : SHARD_STARTUP_S);
		for (;;) {
			size_t l = 2 * k + 1, r = l + 1, m = k;
			double tmp;

			if (l < ns && load[l] < load[m])
				m = l;
			if (r < ns && load[r] < load[m])
				m = r;
			if (m == k)
				break;
			tmp = load[k];
			load[k] = load[m];
			load[m] = tmp;
			k = m;
		}
	}
	for (i = 0; i < ns; i++)
		if (load[i] > end)
			end = load[i];
	free(load);
	return end;
}

void shard_format_duration(double s, char *out, size_t outlen)
{
	long long t;

	if (!isfinite(s) || s < 0)
		s = 0;
	if (s < 9.95) {
		snprintf(out, outlen, "%.1fs", s);
		return;
	}
	t = llround(s);
	if (t < 60)
		snprintf(out, outlen, "%llds", t);
	else if (t < 3600)
		snprintf(out, outlen, "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(out, outlen, "%lldh%02lldm", t / 3600, t % 3600 / 60);
}
