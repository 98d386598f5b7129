-- wrk script for bench/serving.sh: a different merged query on every request, so none can be
-- answered from the result cache. Each asks Source of Play or Source of Discovery, hourly, from
-- a random hour of a batch-complete day to a random hour of today or tomorrow (so it always
-- touches today's realtime rows, which are never cached), with one random filter or none.
--
-- Environment: BENCH_FIRST_DAY (epoch seconds of the first batch day's midnight UTC),
-- BENCH_TODAY (epoch seconds of today's midnight UTC).

local first_day = tonumber(os.getenv("BENCH_FIRST_DAY"))
local today = tonumber(os.getenv("BENCH_TODAY"))
local hour = 3600
local countries = { "US", "BR", "GB", "IN", "MX", "DE", "FR", "JP", "CA", "ES" }
local devices = { "tv", "mobile", "web", "tablet" }
local genres = { "drama", "comedy", "action", "thriller", "documentary", "kids" }
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 100 + id)
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

local function pick(list)
  return list[math.random(#list)]
end

function request()
  local from = first_day + math.random(0, (today - first_day) / hour - 1) * hour
  local to = today + math.random(1, 48) * hour
  local view = math.random(2) == 1 and "source-of-play" or "source-of-discovery"
  local filter = ""
  local f = math.random(5)
  if f == 1 then
    filter = "&country=" .. pick(countries)
  elseif f == 2 then
    filter = "&device=" .. pick(devices)
  elseif f == 3 then
    filter = "&genre=" .. pick(genres)
  elseif f == 4 then
    filter = "&new_launch=" .. (math.random(2) == 1 and "true" or "false")
  end
  return wrk.format("GET", "/v1/" .. view .. "?from=" .. iso(from) .. "&to=" .. iso(to) .. "&granularity=hour" .. filter)
end
