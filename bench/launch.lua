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
   -- what a thread sends after its last body, while it stops: not a launch, never a replay
   spare = wrk.format("GET", "/healthz", {})
   if n == 0 then
      error("launch.lua: no bodies for thread " .. id .. " in " .. file)
   end
end

function request()
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
end
