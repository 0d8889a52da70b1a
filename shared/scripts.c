/* scripts.c -- the Lua scripts (see scripts.h for KEYS and ARGV). */
#include "scripts.h"

/* Dedupe is on the task id: whichever attempt lands first is the task's
 * terminal result; later ones are acknowledged and dropped so a queue entry
 * is never left pending. The results entry and the ack happen together or
 * not at all, which is the at-least-once contract of DESIGN section 5. */
const char script_complete[] =
	"if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then\n"
	"  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
	"  redis.call('XDEL', KEYS[1], ARGV[2])\n"
	"  return 0\n"
	"end\n"
	"redis.call('SADD', KEYS[3], ARGV[3])\n"
	"redis.call('XADD', KEYS[2], '*', 'm', ARGV[5])\n"
	"redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
	"redis.call('XDEL', KEYS[1], ARGV[2])\n"
	"redis.call('HINCRBY', KEYS[4], 'tests_done', ARGV[7])\n"
	"redis.call('HINCRBY', KEYS[4], 'tests_failed', ARGV[8])\n"
	"local done = redis.call('HINCRBY', KEYS[4], 'tasks_done', 1)\n"
	"local total = tonumber(redis.call('HGET', KEYS[4], 'tasks_total'))\n"
	"if total and done >= total then\n"
	"  redis.call('HSET', KEYS[4], 'status', 'done', 'finished_at', ARGV[6])\n"
	"  redis.call('XADD', KEYS[2], '*', 'end', ARGV[6])\n"
	"end\n"
	"return 1\n";
