/* scripts.c -- the Lua scripts (see scripts.h for KEYS, ARGV and replies;
 * docs/delivery.md for why they are shaped this way). */
#include "scripts.h"

/* The order of the checks is the contract of DESIGN section 5:
 *  - a cancelled run takes nothing more: the entry is acked away (2);
 *  - fencing: only the consumer that owns the entry in the group's pending
 *    list may close it (-1 otherwise, and nothing is touched). An entry
 *    that is no longer pending at all was closed before: if its task id is
 *    in the done set this is a resend after a lost reply (0), else the
 *    caller lost it (-1);
 *  - dedupe on the task id (0, acked);
 *  - then the record, the ack and everything it implies, in one step.
 * XPENDING goes through pcall: a queue whose stream or group vanished
 * (Redis restarted empty) must not turn into a script error. With
 * --max-failures the record that reaches the limit is still recorded, but
 * its follow-ups are not scheduled: the run is over. */
const char script_complete[] =
    "local status = redis.call('HGET', KEYS[4], 'status')\n"
    "if status == 'cancelled' then\n"
    "  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "  redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "  redis.call('DEL', KEYS[6])\n"
    "  return 2\n"
    "end\n"
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)\n"
    "if type(p) ~= 'table' or p.err or #p == 0 then\n"
    "  if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then\n"
    "    return 0\n"
    "  end\n"
    "  return -1\n"
    "end\n"
    "if p[1][2] ~= ARGV[4] then\n"
    "  return -1\n"
    "end\n"
    "if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then\n"
    "  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "  redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "  return 0\n"
    "end\n"
    "redis.call('SADD', KEYS[3], ARGV[3])\n"
    "redis.call('XADD', KEYS[2], '*', 'm', ARGV[5])\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "redis.call('DEL', KEYS[6])\n"
    "redis.call('HINCRBY', KEYS[4], 'tests_done', ARGV[7])\n"
    "local failed = redis.call('HINCRBY', KEYS[4], 'tests_failed', "
    "ARGV[8])\n"
    "if ARGV[10] ~= '' then\n"
    "  redis.call('XADD', KEYS[7], 'MAXLEN', '~', '100000', '*', 'm', "
    "ARGV[10], 'task', ARGV[3], 'at', ARGV[6])\n"
    "end\n"
    "local maxf = tonumber(redis.call('HGET', KEYS[4], 'max_failures') or "
    "'0') or 0\n"
    "if maxf > 0 and failed >= maxf and (tonumber(ARGV[8]) or 0) > 0 and\n"
    "   status == 'running' then\n"
    "  local run = string.match(KEYS[4], '.*:run:(.*)$') or KEYS[4]\n"
    "  local why = 'max failures reached (' .. maxf .. ')'\n"
    "  redis.call('HINCRBY', KEYS[4], 'tasks_done', 1)\n"
    "  redis.call('HSET', KEYS[4], 'status', 'cancelled', 'reason', why, "
    "'finished_at', ARGV[6])\n"
    "  redis.call('XADD', KEYS[2], '*', 'end', ARGV[6], 'reason', why)\n"
    "  redis.call('PUBLISH', ARGV[9], 'cancel ' .. run)\n"
    "  return 1\n"
    "end\n"
    "local nf = tonumber(ARGV[11]) or 0\n"
    "for i = 0, nf - 1 do\n"
    "  local b = 12 + 3 * i\n"
    "  redis.call('ZADD', KEYS[5], ARGV[b], ARGV[b + 1] .. '\\n' .. "
    "ARGV[b + 2])\n"
    "end\n"
    "if nf > 0 then\n"
    "  redis.call('HINCRBY', KEYS[4], 'tasks_total', nf)\n"
    "end\n"
    "local done = redis.call('HINCRBY', KEYS[4], 'tasks_done', 1)\n"
    "local total = tonumber(redis.call('HGET', KEYS[4], 'tasks_total'))\n"
    "if total and done >= total and status ~= 'done' then\n"
    "  redis.call('HSET', KEYS[4], 'status', 'done', 'finished_at', "
    "ARGV[6])\n"
    "  redis.call('XADD', KEYS[2], '*', 'end', ARGV[6])\n"
    "end\n"
    "return 1\n";

/* XCLAIM with min-idle 0 and JUSTID resets the idle time without counting
 * a delivery; it runs only after XPENDING showed the caller still owns the
 * entry, so a renew can never steal an entry back from a reaper. */
const char script_renew[] =
    "local lost = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], "
    "ARGV[i], 1)\n"
    "  if type(p) ~= 'table' or p.err or #p == 0 or p[1][2] ~= ARGV[2] "
    "then\n"
    "    lost[#lost + 1] = ARGV[i]\n"
    "  else\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], "
    "'JUSTID')\n"
    "  end\n"
    "end\n"
    "return lost\n";

/* A member without a newline cannot be routed: it is removed, not moved,
 * so it cannot block the set. The queue streams are named from the prefix
 * (they are not declared in KEYS: testfleet runs on one primary, never a
 * cluster). */
const char script_promote[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], "
    "'LIMIT', 0, tonumber(ARGV[2]) or 100)\n"
    "local n = 0\n"
    "for _, m in ipairs(due) do\n"
    "  local nl = string.find(m, '\\n', 1, true)\n"
    "  if nl and nl > 1 then\n"
    "    redis.call('XADD', ARGV[3] .. ':q:' .. string.sub(m, 1, nl - 1), "
    "'*', 'm', string.sub(m, nl + 1))\n"
    "    n = n + 1\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "return n\n";

/* Only a running run can be cancelled; the notice is published last, so a
 * worker that hears it already finds the status changed. */
const char script_cancel[] =
    "if redis.call('HGET', KEYS[1], 'status') ~= 'running' then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'status', 'cancelled', 'reason', ARGV[2], "
    "'finished_at', ARGV[1])\n"
    "redis.call('XADD', KEYS[2], '*', 'end', ARGV[1], 'reason', ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], 'cancel ' .. ARGV[4])\n"
    "return 1\n";
