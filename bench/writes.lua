-- wrk script: the write mix, five operations in turn, against real state.
--
--   open a slot (POST /schedule/slots/), book an open slot (PUT with a patient), update the
--   description of another open slot (PUT with a description), cancel a booking this run made
--   (DELETE /schedule/appointments/{uuid}), delete a slot this run opened (DELETE /schedule/slots/{uuid}).
--
-- The uuids to cancel and delete come from the answers (response() below), so every cancel and
-- delete names a record that is booked or open at that moment. Until the first answers arrive
-- (the first requests of a run), a cancel or delete with nothing to act on books or opens one
-- more instead; against a mock (`mock` = 1, whose answers name its examples) it acts on the
-- documentation's example uuid, so the mock receives the same five operations.
--
-- Arguments: FILE TOKEN PREFIX PROVIDER LAT LON TYPE BASE MOCK
--   FILE     lines "B<TAB>uuid" (open slots to book) and "D<TAB>uuid" (open slots to describe)
--   PREFIX   the path prefix ("/api/v4", or "" for Prism)
--   PROVIDER, LAT, LON, TYPE   whose calendar the new slots go in
--   BASE     Unix time of the first new slot; new slots follow hourly (each run its own range)
local book, describe = {}, {}
local prefix, provider, lat, lon, kind, base, mock
local booked = {first = 1, last = 0}
local created = {first = 1, last = 0}
local deleting = {}
local step, made, booking, describing = 0, 0, 0, 0
local EXAMPLE = "ef987691-0a19-447f-814d-f8f3abbf4859"
local PATIENT = '{"patient": {"_uuid": "500ef469-2767-4901-b705-425e9b6f7f83", "first_name": "John", ' ..
                '"last_name": "Doe", "email": "john@hondoe.com", "phone": "800-555-1212", ' ..
                '"birth_date": "1970-01-01", "member_id": "M000001"}}'
local NEW_YEAR = 2100  -- new slots start in this year or later; the data sets' own slots do not

local function push(queue, value)
  queue.last = queue.last + 1
  queue[queue.last] = value
end

local function pop(queue)
  if queue.first > queue.last then return nil end
  local value = queue[queue.first]
  queue[queue.first] = nil
  queue.first = queue.first + 1
  return value
end

function init(args)
  for line in io.lines(args[1]) do
    local list, uuid = line:match("^(%a)\t(%S+)$")
    if list == "B" then table.insert(book, uuid) elseif list == "D" then table.insert(describe, uuid) end
  end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
  prefix, provider, lat, lon, kind = args[3], args[4], args[5], args[6], args[7]
  base, mock = tonumber(args[8]), args[9] == "1"
end

local function open_slot()
  made = made + 1
  local start = base + made * 3600
  local body = string.format('{"pd_provider_uuid": "%s", "location": [%s, %s], "appointment_type": "%s", ' ..
                             '"start_date": "%s", "end_date": "%s"}', provider, lat, lon, kind,
                             os.date("!%Y-%m-%dT%H:%M:%S", start), os.date("!%Y-%m-%dT%H:%M:%S", start + 1800))
  return wrk.format("POST", prefix .. "/schedule/slots/", nil, body)
end

local function book_slot()
  booking = booking + 1
  return wrk.format("PUT", prefix .. "/schedule/appointments/" .. book[(booking % #book) + 1], nil, PATIENT)
end

function request()
  step = step + 1
  local phase = step % 5
  if phase == 1 then return open_slot() end
  if phase == 2 then return book_slot() end
  if phase == 3 then
    describing = describing + 1
    return wrk.format("PUT", prefix .. "/schedule/appointments/" .. describe[(describing % #describe) + 1], nil,
                      string.format('{"description": "bench note %d"}', describing))
  end
  if phase == 4 then
    local uuid = pop(booked) or (mock and EXAMPLE)
    if not uuid then return book_slot() end
    return wrk.format("DELETE", prefix .. "/schedule/appointments/" .. uuid)
  end
  local uuid = pop(created) or (mock and EXAMPLE)
  if not uuid then return open_slot() end
  deleting[uuid] = true
  return wrk.format("DELETE", prefix .. "/schedule/slots/" .. uuid)
end

function response(status, headers, body)
  if status ~= 200 or body == nil or mock then return end
  local uuid = body:match('"pd_appointment_uuid": ?"([%x%-]+)"')
  if not uuid then return end
  if body:find('"booked": ?true') then
    push(booked, uuid)
  elseif tonumber(body:match('"start_date": ?"(%d%d%d%d)') or "0") >= NEW_YEAR then
    if deleting[uuid] then deleting[uuid] = nil else push(created, uuid) end
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
