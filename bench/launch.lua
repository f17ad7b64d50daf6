-- bench/launch.lua - wrk script: POSTs pre-signed LTI launches, each one once.
--
--   wrk -t2 -c64 -d10s --latency -s bench/launch.lua http://127.0.0.1:PORT/lti/launch \
--       -- BODIES THREADS [once|cycle]
--
-- BODIES is a file written by bench/presign (one urlencoded body per line),
-- THREADS the -t given to wrk (wrk starts each thread before it sets up the
-- next, so a thread cannot count its siblings itself). Thread k of n sends
-- lines k+1, k+1+n, k+1+2n, ... so no launch is sent twice. The requests are
-- formatted once, in init(), so that request() costs wrk almost nothing: wrk
-- shares the machine's cores with the server under test.
--
-- "once" (the default) is for ltibadges: a thread that has sent all its
-- bodies stops (a repeated body would be a replay, refused with 401); done()
-- then prints "exhausted" and the run must be repeated with more bodies.
-- "cycle" is for the ceiling, which verifies nothing: bodies are reused.
-- Arguments may also come from LAUNCH_BODIES, LAUNCH_THREADS, LAUNCH_MODE.
--
-- wrk's own Requests/sec is not the server's rate here: wrk starts timing once
-- every thread is created, but thread 0 starts sending while init() formats
-- the next thread's bodies (seconds, for half a million of them), and its
-- requests count while that time does not. So each thread counts its
-- requests in 100 ms buckets of the monotonic clock, and done() prints the
-- rate over the window in which every thread was sending ("steady rate").
-- To keep the threads together, a thread's first request() sleeps until the
-- threads after it should have formatted theirs (as long as it took itself,
-- each); the steady rate does not depend on how well that works.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } launch_timespec;
int clock_gettime(int clock, launch_timespec *ts);
int usleep(unsigned int usec);
]]
local CLOCK_MONOTONIC = 1
local clock_ts = ffi.new("launch_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock_ts)
   return tonumber(clock_ts.tv_sec) * 1000 + tonumber(clock_ts.tv_nsec) / 1e6
end

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file = args[1] or os.getenv("LAUNCH_BODIES")
   local nthreads = tonumber(args[2] or os.getenv("LAUNCH_THREADS") or "")
   local mode = args[3] or os.getenv("LAUNCH_MODE") or "once"

   if not file or not nthreads or nthreads < 1 then
      error("launch.lua: usage: -- BODIES THREADS [once|cycle]")
   end
   if mode ~= "once" and mode ~= "cycle" then
      error("launch.lua: mode must be once or cycle, not " .. mode)
   end
   cycle = mode == "cycle"

   local init_start = now_ms()
   local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   local n, lineno = 0, 0
   reqs = {}
   for line in io.lines(file) do
      if lineno % nthreads == id and #line > 0 then
         n = n + 1
         reqs[n] = wrk.format("POST", wrk.path, headers, line)
      end
      lineno = lineno + 1
   end
   nbodies = n
   pos = 0
   sent = 0
   exhausted = false
   -- the threads after this one format as many bodies, one after another
   go_ms = now_ms() + (nthreads - 1 - id) * (now_ms() - init_start)
   verified = id ~= 0 -- see request()
   first_ms = 0 -- when this thread sent its first request, and its last
   last_ms = 0
   buckets = {} -- requests per 100 ms since first_ms
   -- what a thread sends after its last body, while it stops: not a launch, never a replay
   spare = wrk.format("GET", "/healthz", {})
   if n == 0 then
      error("launch.lua: no bodies for thread " .. id .. " in " .. file)
   end
end

function request()
   if not verified then
      -- wrk's main thread calls thread 0's request() once, to check what it
      -- returns, before it starts the threads: not a request sent
      verified = true
      return reqs[1]
   end
   local t = now_ms()
   if first_ms == 0 then
      while t < go_ms do
         -- usleep takes less than a second at a time
         ffi.C.usleep(math.floor(math.min(go_ms - t, 500) * 1000))
         t = now_ms()
      end
      first_ms = t
   end
   if not exhausted then
      -- wrk asks for a connection's next request once its answer came back
      local b = math.floor((t - first_ms) / 100)
      buckets[b] = (buckets[b] or 0) + 1
      last_ms = t
   end
   if pos >= nbodies then
      if not cycle then
         if not exhausted then
            exhausted = true
            wrk.thread:stop()
         end
         return spare
      end
      pos = 0
   end
   pos = pos + 1
   sent = sent + 1
   return reqs[pos]
end

function done(summary, latency, requests)
   local total, used, out = 0, 0, 0
   for _, t in ipairs(threads) do
      total = total + t:get("nbodies")
      used = used + t:get("sent")
      if t:get("exhausted") then
         out = out + 1
      end
   end
   io.write(string.format("launch.lua: %d bodies loaded, %d requested, %d thread(s) exhausted\n",
                          total, used, out))
   -- thread k sent lines k+1, k+1+n, ...: the last line any thread sent, so that the next
   -- run can start after it (bench/run-launch.sh moves presign's --start on by it)
   local upto = 0
   for _, t in ipairs(threads) do
      local s = t:get("sent")
      if s > 0 then
         upto = math.max(upto, (s - 1) * #threads + t:get("id") + 1)
      end
   end
   io.write(string.format("launch.lua: lines sent up to %d\n", upto))

   -- the window in which every thread was sending: from the last one's first
   -- request (plus a bucket, to skip its connections' start) to the first one's last
   local lo, hi = 0, math.huge
   for _, t in ipairs(threads) do
      lo = math.max(lo, t:get("first_ms") + 100)
      hi = math.min(hi, t:get("last_ms"))
   end
   -- each thread's rate over its own 100 ms steps that lie within the window, summed
   local rate, span = 0, 0
   for _, t in ipairs(threads) do
      local first, b = t:get("first_ms"), t:get("buckets")
      local k0 = math.ceil((lo - first) / 100)
      local k1 = math.floor((hi - first) / 100) - 1
      if k1 >= k0 then
         local n = 0
         for k = k0, k1 do
            n = n + (b[k] or 0)
         end
         rate = rate + n / ((k1 - k0 + 1) / 10)
         span = math.max(span, (k1 - k0 + 1) / 10)
      end
   end
   if span > 0 then
      io.write(string.format("launch.lua: steady rate %.0f requests/s over %.1f s\n", rate, span))
   end
end
