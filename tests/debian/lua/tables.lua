-- Tables, sorting with comparators, metatables, closures, coroutines, errors.
local people = {
    { name = "alice", age = 32 }, { name = "bob", age = 27 }, { name = "carol", age = 41 },
    { name = "dave", age = 27 }, { name = "erin", age = 33 },
}
table.sort(people, function(a, b)
    if a.age ~= b.age then return a.age < b.age end
    return a.name > b.name
end)
for i, p in ipairs(people) do io.write(i, "=", p.name, "(", p.age, ") ") end
print()
local nums = {}
for i = 1, 20 do nums[i] = (i * 7919) % 101 end
table.sort(nums)
print(table.concat(nums, " "))
table.sort(nums, function(a, b) return a > b end)
print(table.concat(nums, " ", 1, 5))
local t = { 10, 20, 30 }
table.insert(t, 40); table.insert(t, 1, 5); print(table.remove(t), table.remove(t, 1), #t, table.concat(t, ","))
print(table.unpack(table.move({ 1, 2, 3 }, 1, 3, 2, { 9 })))
local keys = {}
for k in pairs({ x = 1, y = 2, z = 3, w = 4 }) do keys[#keys + 1] = k end
table.sort(keys)
print(table.concat(keys))
-- Metatables.
local Vec = {}
Vec.__index = Vec
Vec.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, Vec) end
Vec.__tostring = function(v) return "(" .. v.x .. ", " .. v.y .. ")" end
Vec.__eq = function(a, b) return a.x == b.x and a.y == b.y end
Vec.__lt = function(a, b) return a:len2() < b:len2() end
Vec.__len = function() return 2 end
function Vec.len2(v) return v.x * v.x + v.y * v.y end
local a, b = setmetatable({ x = 1, y = 2 }, Vec), setmetatable({ x = 3, y = 4 }, Vec)
print(tostring(a + b), a == setmetatable({ x = 1, y = 2 }, Vec), a < b, #a, rawlen(a))
local defaults = setmetatable({}, { __index = function(_, k) return k .. "!" end })
print(defaults.foo, rawget(defaults, "foo"))
-- Closures.
local function counter(step)
    local n = 0
    return function() n = n + step; return n end
end
local c1, c2 = counter(1), counter(10)
print(c1(), c1(), c2(), c1(), c2())
local fns = {}
for i = 1, 3 do fns[i] = function() return i * i end end
print(fns[1](), fns[2](), fns[3]())
-- Coroutines.
local gen = coroutine.wrap(function()
    for i = 1, 3 do coroutine.yield(i) end
    return "done"
end)
print(gen(), gen(), gen(), gen())
local co = coroutine.create(function(x, y)
    local z = coroutine.yield(x + y)
    local w = coroutine.yield(z * 2)
    return w, "end"
end)
print(coroutine.resume(co, 1, 2))
print(coroutine.resume(co, 10))
print(coroutine.resume(co, "last"))
print(coroutine.resume(co), coroutine.status(co))
local function producer()
    return coroutine.wrap(function()
        for w in ("alpha beta gamma"):gmatch("%a+") do coroutine.yield(w) end
    end)
end
for w in producer() do io.write(w:upper(), " ") end
print()
-- Errors.
print(pcall(error, "plain", 0))
print(select(2, pcall(error, { code = 42 })).code)
print(pcall(function() local x = nil; return x.field end) == false)
local ok, msg = pcall(function() error("with level 0", 0) end)
print(ok, msg)
print(xpcall(function() error("boom", 0) end, function(m) return "handled: " .. m end))
print(pcall(string.rep))
print(select("#", pcall(function() return 1, 2, 3 end)))
local ok2, err2 = pcall(function() return 1 + {} end)
print(ok2, (err2:gsub("^.-:%d+: ", "")))
print(string.format("%q", 1 / 3), load("return 2 + 3")(), load("syntax error here") == nil)
local env = { print = print }
load("x = 5; print('x in env', x)", "chunk", "t", env)()
print("x global", x, "env.x", env.x)
goto skip
print("skipped")
::skip::
print("os.time", os.time({ year = 2000, month = 1, day = 1, hour = 12, min = 0, sec = 0 }))
print(os.date("!%Y-%m-%d %H:%M:%S", 86400 * 365), os.date("!*t", 0).year, os.getenv("SHOAL_TEST_SUITE"))
