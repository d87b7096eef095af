-- Reads stdin in the different io.read formats: a line, numbers, records, then the rest.
local header = io.read("l")
print("header: " .. header)
local a, b, c = io.read("n", "n", "n")
print("numbers", a, b, c, math.type(a), math.type(c))
io.read("l")
local total, rows = 0, {}
while true do
    local line = io.read("L")
    if line == nil or line == "---\n" then break end
    local name, qty, price = line:match("^(%a+)%s+(%d+)%s+([%d.]+)\n$")
    qty, price = tonumber(qty), tonumber(price)
    total = total + qty * price
    rows[#rows + 1] = { name = name, cost = qty * price }
end
table.sort(rows, function(x, y) return x.cost > y.cost end)
for _, r in ipairs(rows) do print(string.format("%-8s %10.2f", r.name, r.cost)) end
print(string.format("total %.2f", total))
local rest = io.read("a")
local words, freq = 0, {}
for w in rest:lower():gmatch("%a+") do
    words = words + 1
    freq[w] = (freq[w] or 0) + 1
end
local list = {}
for w, n in pairs(freq) do list[#list + 1] = { w = w, n = n } end
table.sort(list, function(x, y) return x.n > y.n or (x.n == y.n and x.w < y.w) end)
print("words", words, "distinct", #list)
for i = 1, 5 do print(list[i].w, list[i].n) end
print("eof", io.read("l"), io.read("a") == "")
