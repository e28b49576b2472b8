-- wrk script for bench/bench_submit.py: POST /api/v1/applications, every request a distinct
-- application (its own dossier id, licence, citizen ID and name), built from the template file
-- BENCH_TEMPLATE names (placeholders __DOSSIER__ __LICENCE__ __CITIZEN__ __NAME__).

local counter = 0
local threads = {}

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local template, token, n, tid
local names = {"NGUYỄN VĂN AN", "TRẦN VĂN BÌNH", "LÊ MINH CHÂU", "PHẠM QUỐC DŨNG", "HOÀNG ĐỨC HUY", "VŨ THANH HẢI"}

function init(args)
   local f = assert(io.open(os.getenv("BENCH_TEMPLATE"), "r"))
   template = f:read("*a")
   f:close()
   token = os.getenv("BENCH_TOKEN")
   n = 0
   tid = tonumber(wrk.thread:get("tid"))
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
   n = n + 1
   local serial = tid * 10000000 + n
   local body = template
      :gsub("__DOSSIER__", string.format("G01.99-20261127-%09d", serial))
      :gsub("__LICENCE__", string.format("03%010d", serial))
      :gsub("__CITIZEN__", string.format("001089%06d", serial % 1000000))
      :gsub("__NAME__", names[(serial % #names) + 1])
   return wrk.format(nil, "/api/v1/applications", nil, body)
end
