-- CPU-bound Lua workload for benches/cpu.sh: recursive calls, table churn and string
-- operations. Output is integers only and never depends on hash-table iteration order, so any
-- Lua 5.4 prints the same. Sized to take about half a second under qemu-riscv64.

local function fib(n)
    if n < 2 then return n end
    return fib(n - 1) + fib(n - 2)
end

-- Records are built, sorted with a comparator, filtered and dropped again.
local function tables(n)
    local checksum = 0
    for round = 1, 4 do
        local records = {}
        for i = 1, n do
            local key = (i * 7919 + round * 104729) % 1000003
            records[i] = { key = key, name = "r" .. key, weight = i % 17 }
        end
        table.sort(records, function(a, b) return a.key < b.key end)
        local kept = {}
        for i, r in ipairs(records) do
            if r.weight % 3 ~= 0 then kept[#kept + 1] = r.key * (i % 5 + 1) end
        end
        for i = 1, #kept do checksum = (checksum * 31 + kept[i]) % 4294967291 end
    end
    return checksum
end

-- Formatting, concatenation, pattern matching and substitution.
local function strings(n)
    local parts = {}
    for i = 1, n do
        parts[#parts + 1] = string.format("%05d:%x:%s", i, i * 2654435761 % 4294967296, ("ab"):rep(i % 7))
    end
    local text = table.concat(parts, ";")
    local digits = 0
    for run in text:gmatch("%d+") do digits = digits + #run end
    local upper, swaps = text:gsub("ab", "BA")
    local found, at = 0, 1
    while true do
        local s = upper:find("BABA", at, true)
        if not s then break end
        found, at = found + 1, s + 1
    end
    return #text, digits, swaps, found, #upper:lower()
end

print("fib", fib(23))
print("tables", tables(8000))
print("strings", strings(25000))
