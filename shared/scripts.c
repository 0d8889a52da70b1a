/* scripts.c -- the Lua scripts (see scripts.h for KEYS, ARGV and replies;
 * docs/delivery.md for why they are shaped this way). */
#include "scripts.h"

/* Phase gating (docs/delivery.md, "Phases"), shared by complete, promote
 * and cancel. A run hash R with phase_count > 0 keeps per phase i the
 * fields ph:<i>:name, required, parallel, timeout, tasks (queued so far,
 * follow-ups included), done, bad (failed tests net of --retries reruns
 * that passed), status (pending, running, passed, failed, timeout,
 * skipped, cancelled), started_at, finished_at and deadline; phidx:<name>
 * maps a name to its index and phase_cur is the phase running. The tasks
 * not queued yet wait in the list R:phase:<i> as "<queue>\n<task>". Keys
 * built here (queues, lists, <prefix>:phase_deadlines) are not declared in
 * KEYS: testfleet runs on one primary, never a cluster. Phase times and
 * deadlines come from Redis's own clock (TIME), so the machines' clocks
 * need not agree. The functions:
 *  - tf_queue(R, i) queues phase i's waiting tasks -- all of them, or the
 *    next one of a sequential phase -- and returns how many;
 *  - tf_start(R, i, now) starts phase i (status, start, deadline, its
 *    tasks); an empty phase is skipped over (0);
 *  - tf_finish(R, RES, i, st, now, endat, ctl): phase i is over with
 *    status st (passed, failed, timeout); the next phase starts, or --
 *    after a required phase that did not pass, or after the last one --
 *    the run ends (status done, the "end" entry of RES). A timeout that
 *    ends the run tells the workers to stop what is left of it. Returns 1
 *    when the run ended;
 *  - tf_drop(R): a cancelled run's waiting tasks and deadline go;
 *  - tf_purge(R, i) deletes the entries of phase i that no worker has read
 *    yet (after the group's last-delivered id), scanning at most 100000
 *    entries of each of the run's queues, and returns how many went;
 *  - tf_timeout(R, i, now, ctl): phase i ran out of time: its unread tasks
 *    are deleted, what still runs no longer counts (tasks_total drops to
 *    what was recorded), and it ends with status "timeout". */
#define PHASE_LUA                                                              \
	"local function tf_ph(i, f)\n"                                         \
	"  return 'ph:' .. i .. ':' .. f\n"                                    \
	"end\n"                                                                \
	"local function tf_prefix(R)\n"                                        \
	"  return string.match(R, '^(.*):run:[^:]*$') or 'tf'\n"               \
	"end\n"                                                                \
	"local function tf_runid(R)\n"                                         \
	"  return string.match(R, '^.*:run:([^:]*)$') or R\n"                  \
	"end\n"                                                                \
	"local function tf_time()\n"                                           \
	"  local t = redis.call('TIME')\n"                                     \
	"  return tonumber(t[1]) + tonumber(t[2]) / 1000000\n"                 \
	"end\n"                                                                \
	"local function tf_fmt(x)\n"                                           \
	"  return string.format('%.3f', x)\n"                                  \
	"end\n"                                                                \
	"local function tf_num(v)\n"                                           \
	"  return tonumber(v or '0') or 0\n"                                   \
	"end\n"                                                                \
	"local function tf_queue(R, i)\n"                                      \
	"  local list = R .. ':phase:' .. i\n"                                 \
	"  local q = tf_prefix(R) .. ':q:'\n"                                  \
	"  local seq = redis.call('HGET', R, tf_ph(i, 'parallel')) == '0'\n"   \
	"  local n = 0\n"                                                      \
	"  while true do\n"                                                    \
	"    local ms\n"                                                       \
	"    if seq then\n"                                                    \
	"      local m = redis.call('LPOP', list)\n"                           \
	"      if not m then break end\n"                                      \
	"      ms = {m}\n"                                                     \
	"    else\n"                                                           \
	"      ms = redis.call('LRANGE', list, 0, -1)\n"                       \
	"      redis.call('DEL', list)\n"                                      \
	"    end\n"                                                            \
	"    for _, m in ipairs(ms) do\n"                                      \
	"      local nl = string.find(m, '\\n', 1, true)\n"                    \
	"      if nl and nl > 1 then\n"                                        \
	"        redis.call('XADD', q .. string.sub(m, 1, nl - 1), '*', "      \
	"'m', string.sub(m, nl + 1))\n"                                        \
	"        n = n + 1\n"                                                  \
	"      end\n"                                                          \
	"    end\n"                                                            \
	"    if n > 0 or not seq then break end\n"                             \
	"  end\n"                                                              \
	"  if n > 0 then\n"                                                    \
	"    redis.call('HINCRBY', R, tf_ph(i, 'tasks'), n)\n"                 \
	"    redis.call('HINCRBY', R, 'tasks_total', n)\n"                     \
	"  end\n"                                                              \
	"  return n\n"                                                         \
	"end\n"                                                                \
	"local function tf_start(R, i, now)\n"                                 \
	"  redis.call('HSET', R, 'phase_cur', i, tf_ph(i, 'status'), "         \
	"'running', tf_ph(i, 'started_at'), tf_fmt(now))\n"                    \
	"  local n = tf_queue(R, i)\n"                                         \
	"  if n == 0 then\n"                                                   \
	"    redis.call('HSET', R, tf_ph(i, 'status'), 'skipped', "            \
	"tf_ph(i, 'finished_at'), tf_fmt(now))\n"                              \
	"    return 0\n"                                                       \
	"  end\n"                                                              \
	"  local t = tf_num(redis.call('HGET', R, tf_ph(i, 'timeout')))\n"     \
	"  if t > 0 then\n"                                                    \
	"    redis.call('HSET', R, tf_ph(i, 'deadline'), tf_fmt(now + t))\n"   \
	"    redis.call('ZADD', tf_prefix(R) .. ':phase_deadlines', "          \
	"string.format('%.0f', (now + t) * 1000), tf_runid(R))\n"              \
	"  end\n"                                                              \
	"  return n\n"                                                         \
	"end\n"                                                                \
	"local function tf_finish(R, RES, i, st, now, endat, ctl)\n"           \
	"  local run = tf_runid(R)\n"                                          \
	"  local n = tf_num(redis.call('HGET', R, 'phase_count'))\n"           \
	"  local stop = st ~= 'passed' and\n"                                  \
	"    redis.call('HGET', R, tf_ph(i, 'required')) ~= '0'\n"             \
	"  redis.call('HSET', R, tf_ph(i, 'status'), st, "                     \
	"tf_ph(i, 'finished_at'), tf_fmt(now))\n"                              \
	"  redis.call('DEL', R .. ':phase:' .. i)\n"                           \
	"  redis.call('ZREM', tf_prefix(R) .. ':phase_deadlines', run)\n"      \
	"  for j = i + 1, n - 1 do\n"                                          \
	"    if stop then\n"                                                   \
	"      redis.call('HSET', R, tf_ph(j, 'status'), 'skipped')\n"         \
	"      redis.call('DEL', R .. ':phase:' .. j)\n"                       \
	"    elseif tf_start(R, j, now) > 0 then\n"                            \
	"      return 0\n"                                                     \
	"    end\n"                                                            \
	"  end\n"                                                              \
	"  redis.call('HSET', R, 'status', 'done', 'finished_at', endat)\n"    \
	"  redis.call('XADD', RES, '*', 'end', endat)\n"                       \
	"  if st == 'timeout' then\n"                                          \
	"    redis.call('PUBLISH', ctl, 'cancel ' .. run)\n"                   \
	"  end\n"                                                              \
	"  return 1\n"                                                         \
	"end\n"                                                                \
	"local function tf_drop(R)\n"                                          \
	"  local n = tf_num(redis.call('HGET', R, 'phase_count'))\n"           \
	"  for j = 0, n - 1 do\n"                                              \
	"    redis.call('DEL', R .. ':phase:' .. j)\n"                         \
	"    local s = redis.call('HGET', R, tf_ph(j, 'status'))\n"            \
	"    if s == 'running' or s == 'pending' then\n"                       \
	"      redis.call('HSET', R, tf_ph(j, 'status'), 'cancelled')\n"       \
	"    end\n"                                                            \
	"  end\n"                                                              \
	"  if n > 0 then\n"                                                    \
	"    redis.call('ZREM', tf_prefix(R) .. ':phase_deadlines', "          \
	"tf_runid(R))\n"                                                       \
	"  end\n"                                                              \
	"end\n"                                                                \
	"local function tf_purge(R, i)\n"                                      \
	"  local run = tf_runid(R)\n"                                          \
	"  local name = redis.call('HGET', R, tf_ph(i, 'name'))\n"             \
	"  local queues = redis.call('HGET', R, 'queues')\n"                   \
	"  local gone = 0\n"                                                   \
	"  if not name or not queues then return 0 end\n"                      \
	"  for qn in string.gmatch(queues, '[^,]+') do\n"                      \
	"    local key = tf_prefix(R) .. ':q:' .. qn\n"                        \
	"    local groups = redis.pcall('XINFO', 'GROUPS', key)\n"             \
	"    local last\n"                                                     \
	"    if type(groups) == 'table' and not groups.err then\n"             \
	"      for _, g in ipairs(groups) do\n"                                \
	"        local gname, gid\n"                                           \
	"        for k = 1, #g - 1, 2 do\n"                                    \
	"          if g[k] == 'name' then gname = g[k + 1] end\n"              \
	"          if g[k] == 'last-delivered-id' then gid = g[k + 1] end\n"   \
	"        end\n"                                                        \
	"        if gname == 'workers' then last = gid end\n"                  \
	"      end\n"                                                          \
	"    end\n"                                                            \
	"    local seen = 0\n"                                                 \
	"    while last and seen < 100000 do\n"                                \
	"      local es = redis.call('XRANGE', key, '(' .. last, '+', "        \
	"'COUNT', 1000)\n"                                                     \
	"      if #es == 0 then break end\n"                                   \
	"      for _, e in ipairs(es) do\n"                                    \
	"        seen = seen + 1\n"                                            \
	"        last = e[1]\n"                                                \
	"        local f = e[2]\n"                                             \
	"        for k = 1, #f - 1, 2 do\n"                                    \
	"          if f[k] == 'm' then\n"                                      \
	"            local ok, t = pcall(cmsgpack.unpack, f[k + 1])\n"         \
	"            if ok and type(t) == 'table' and t.run == run and\n"      \
	"               t.phase == name then\n"                                \
	"              redis.call('XDEL', key, e[1])\n"                        \
	"              gone = gone + 1\n"                                      \
	"            end\n"                                                    \
	"          end\n"                                                      \
	"        end\n"                                                        \
	"      end\n"                                                          \
	"    end\n"                                                            \
	"  end\n"                                                              \
	"  return gone\n"                                                      \
	"end\n"                                                                \
	"local function tf_timeout(R, i, now, ctl)\n"                          \
	"  tf_purge(R, i)\n"                                                   \
	"  local pt = tf_num(redis.call('HGET', R, tf_ph(i, 'tasks')))\n"      \
	"  local pd = tf_num(redis.call('HGET', R, tf_ph(i, 'done')))\n"       \
	"  if pt > pd then\n"                                                  \
	"    redis.call('HINCRBY', R, 'tasks_total', pd - pt)\n"               \
	"    redis.call('HSET', R, tf_ph(i, 'tasks'), pd)\n"                   \
	"  end\n"                                                              \
	"  return tf_finish(R, R .. ':results', i, 'timeout', now, "           \
	"tf_fmt(now), ctl)\n"                                                  \
	"end\n"

/* The order of the checks is the contract of DESIGN section 5:
 *  - a cancelled run takes nothing more: the entry is acked away (2);
 *  - fencing: only the consumer that owns the entry in the group's pending
 *    list may close it (-1 otherwise, and nothing is touched). An entry
 *    that is no longer pending at all was closed before: if its task id is
 *    in the done set this is a resend after a lost reply (0), else the
 *    caller lost it (-1);
 *  - dedupe on the task id (0, acked);
 *  - a record of a phase that is over (it timed out) is acked away (2);
 *  - then the record, the ack and everything it implies, in one step.
 * XPENDING goes through pcall: a queue whose stream or group vanished
 * (Redis restarted empty) must not turn into a script error. With
 * --max-failures the record that reaches the limit is still recorded, but
 * its follow-ups are not scheduled: the run is over.
 *
 * Phases: the record (msgpack) is read with Redis's cmsgpack for its
 * phase and, for a --retries rerun, how many of its tests no longer
 * failed (they were counted as failed by the first record). When nothing
 * of the phase is outstanding any more (done = tasks, follow-ups
 * included), a sequential phase without failures queues its next task;
 * otherwise the phase ends and the next one starts (tf_finish). A run
 * without phase_count (made by an older producer) ends when tasks_done
 * reaches tasks_total, as before. */
const char script_complete[] = PHASE_LUA
    "local R = KEYS[4]\n"
    "local status = redis.call('HGET', R, 'status')\n"
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
    "local pi = false\n"
    "local regained = 0\n"
    "if tf_num(redis.call('HGET', R, 'phase_count')) > 0 then\n"
    "  local ok, rec = pcall(cmsgpack.unpack, ARGV[5])\n"
    "  if ok and type(rec) == 'table' then\n"
    "    if type(rec.phase) == 'string' then\n"
    "      pi = redis.call('HGET', R, 'phidx:' .. rec.phase)\n"
    "    end\n"
    "    if rec.rerun == true and type(rec.tests) == 'table' then\n"
    "      for _, t in ipairs(rec.tests) do\n"
    "        if type(t) == 'table' and t.outcome ~= 'failed' and\n"
    "           t.outcome ~= 'error' then\n"
    "          regained = regained + 1\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if not pi then\n"
    "    pi = redis.call('HGET', R, 'phase_cur')\n"
    "  end\n"
    "  if pi and redis.call('HGET', R, tf_ph(pi, 'status')) ~= 'running' "
    "then\n"
    "    redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "    redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "    redis.call('DEL', KEYS[6])\n"
    "    return 2\n"
    "  end\n"
    "end\n"
    "redis.call('SADD', KEYS[3], ARGV[3])\n"
    "redis.call('XADD', KEYS[2], '*', 'm', ARGV[5])\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "redis.call('DEL', KEYS[6])\n"
    "redis.call('HINCRBY', R, 'tests_done', ARGV[7])\n"
    "local failed = redis.call('HINCRBY', R, 'tests_failed', ARGV[8])\n"
    "if ARGV[10] ~= '' then\n"
    "  redis.call('XADD', KEYS[7], 'MAXLEN', '~', '100000', '*', 'm', "
    "ARGV[10], 'task', ARGV[3], 'at', ARGV[6])\n"
    "end\n"
    "local maxf = tf_num(redis.call('HGET', R, 'max_failures'))\n"
    "if maxf > 0 and failed >= maxf and (tonumber(ARGV[8]) or 0) > 0 and\n"
    "   status == 'running' then\n"
    "  local run = string.match(R, '.*:run:(.*)$') or R\n"
    "  local why = 'max failures reached (' .. maxf .. ')'\n"
    "  redis.call('HINCRBY', R, 'tasks_done', 1)\n"
    "  redis.call('HSET', R, 'status', 'cancelled', 'reason', why, "
    "'finished_at', ARGV[6])\n"
    "  tf_drop(R)\n"
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
    "  redis.call('HINCRBY', R, 'tasks_total', nf)\n"
    "  if pi then\n"
    "    redis.call('HINCRBY', R, tf_ph(pi, 'tasks'), nf)\n"
    "  end\n"
    "end\n"
    "local done = redis.call('HINCRBY', R, 'tasks_done', 1)\n"
    "if pi then\n"
    "  local pd = redis.call('HINCRBY', R, tf_ph(pi, 'done'), 1)\n"
    "  local bad = redis.call('HINCRBY', R, tf_ph(pi, 'bad'), "
    "(tonumber(ARGV[8]) or 0) - regained)\n"
    "  if pd >= tf_num(redis.call('HGET', R, tf_ph(pi, 'tasks'))) then\n"
    "    if bad <= 0 and redis.call('HGET', R, tf_ph(pi, 'parallel')) == "
    "'0' and tf_queue(R, pi) > 0 then\n"
    "      return 1\n"
    "    end\n"
    "    tf_finish(R, KEYS[2], pi, bad > 0 and 'failed' or 'passed', "
    "tf_time(), ARGV[6], ARGV[9])\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "local total = tonumber(redis.call('HGET', R, 'tasks_total'))\n"
    "if total and done >= total and status ~= 'done' then\n"
    "  redis.call('HSET', R, 'status', 'done', 'finished_at', "
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
 * cluster). Then the phase deadlines: a run whose running phase is past
 * its deadline (by Redis's clock) has that phase timed out (tf_timeout);
 * at most 10 runs per call. A member whose phase is no longer running is
 * stale and just removed. */
const char script_promote[] = PHASE_LUA
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
    "local dl = ARGV[3] .. ':phase_deadlines'\n"
    "if redis.call('ZCARD', dl) > 0 then\n"
    "  local now = tf_time()\n"
    "  local late = redis.call('ZRANGEBYSCORE', dl, '-inf', "
    "string.format('%.0f', now * 1000), 'LIMIT', 0, 10)\n"
    "  for _, run in ipairs(late) do\n"
    "    local R = ARGV[3] .. ':run:' .. run\n"
    "    local i = redis.call('HGET', R, 'phase_cur')\n"
    "    redis.call('ZREM', dl, run)\n"
    "    if i and redis.call('HGET', R, 'status') == 'running' and\n"
    "       redis.call('HGET', R, tf_ph(i, 'status')) == 'running' then\n"
    "      local d = tonumber(redis.call('HGET', R, tf_ph(i, 'deadline')) "
    "or '')\n"
    "      if d and d <= now then\n"
    "        tf_timeout(R, i, now, ARGV[3] .. ':control')\n"
    "      elseif d then\n"
    "        redis.call('ZADD', dl, string.format('%.0f', d * 1000), run)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return n\n";

/* Only a running run can be cancelled; the notice is published last, so a
 * worker that hears it already finds the status changed. The phases' tasks
 * not queued yet are dropped with their deadline. */
const char script_cancel[] = PHASE_LUA
    "if redis.call('HGET', KEYS[1], 'status') ~= 'running' then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'status', 'cancelled', 'reason', ARGV[2], "
    "'finished_at', ARGV[1])\n"
    "tf_drop(KEYS[1])\n"
    "redis.call('XADD', KEYS[2], '*', 'end', ARGV[1], 'reason', ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], 'cancel ' .. ARGV[4])\n"
    "return 1\n";
