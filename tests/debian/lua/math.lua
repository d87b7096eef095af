-- Numbers: integer/float semantics, division, overflow wrap, math library.
print(math.floor(3.7), math.floor(-3.7), math.ceil(-3.2), math.fmod(7, 3), math.fmod(-7, 3), math.fmod(7.5, 2))
print(7 // 2, -7 // 2, 7 % -3, -7 % 3, 7.5 // 2, -7.5 % 2, 1 / 0, -1 / 0, 3 / 2)
print(math.sqrt(2), math.sqrt(16), math.huge, -math.huge, math.pi)
print(math.maxinteger, math.mininteger, math.maxinteger + 1 == math.mininteger, math.mininteger // -1)
print(math.maxinteger * 2, 1 << 63, 1 << 64, -1 >> 1, 5 & 3, 5 | 3, 5 ~ 3, ~0)
print(math.type(1), math.type(1.0), math.type("1"), 1 == 1.0, math.ult(1, -1), math.abs(math.mininteger))
print(math.tointeger(2^31), 2^63, math.floor(2^62), string.format("%.0f", 2^63))
print(math.max(3, 9, -1), math.min(3, 9, -1), math.exp(1), math.log(100, 10), math.log(8, 2), math.log(1))
print(math.sin(0), math.cos(math.pi), math.atan(1, 1), math.atan(-1, -1))
local nan = 0 / 0
print(nan ~= nan, math.huge > math.maxinteger, -0.0 == 0.0, 1 / -0.0)
print(string.format("%.17g %.17g %.17g", 1e308 * 10, 2.5e-324, 4.9406564584124654e-324))
print(string.format("%.17g", 0.1 + 0.2), 0.1 + 0.2 == 0.3, 100000000000000, 1e15, 2^24 + 1.0)
print(3 | 0, "10" + 5, "3.0" * 2, 10 // 0.0, -10 % math.huge, pcall(function() return 1 // 0 end))
local acc = 0
for i = 1, 100 do acc = acc + i * i end
print("sum of squares", acc)
local x = 1
for _ = 1, 70 do x = x * 3 end
print("3^70 wrapped", x, "float", 3.0 ^ 70)
for _, v in ipairs({ 0.5, 1.5, 2.5, -0.5, -1.5 }) do
    io.write(string.format("%.1f->%d ", v, math.floor(v + 0.5)))
end
print()
print(string.format("%5.3f %5.3f", math.modf(3.75)), math.modf(-3.75))
print(8 % 3.5, 2^-1074, string.format("%a", 2^-1074), string.format("%a", math.huge))
