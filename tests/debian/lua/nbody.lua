-- A deterministic CPU workload: the n-body simulation and spectral norm (Computer Language
-- Benchmarks Game), with small sizes so an interpreter finishes in seconds.
local sqrt = math.sqrt
local PI = math.pi
local SOLAR_MASS = 4 * PI * PI
local DAYS_PER_YEAR = 365.24
local bodies = {
    { x = 0, y = 0, z = 0, vx = 0, vy = 0, vz = 0, mass = SOLAR_MASS },
    { x = 4.84143144246472090e+00, y = -1.16032004402742839e+00, z = -1.03622044471123109e-01,
      vx = 1.66007664274403694e-03 * DAYS_PER_YEAR, vy = 7.69901118419740425e-03 * DAYS_PER_YEAR,
      vz = -6.90460016972063023e-05 * DAYS_PER_YEAR, mass = 9.54791938424326609e-04 * SOLAR_MASS },
    { x = 8.34336671824457987e+00, y = 4.12479856412430479e+00, z = -4.03523417114321381e-01,
      vx = -2.76742510726862411e-03 * DAYS_PER_YEAR, vy = 4.99852801234917238e-03 * DAYS_PER_YEAR,
      vz = 2.30417297573763929e-05 * DAYS_PER_YEAR, mass = 2.85885980666130812e-04 * SOLAR_MASS },
    { x = 1.28943695621391310e+01, y = -1.51111514016986312e+01, z = -2.23307578892655734e-01,
      vx = 2.96460137564761618e-03 * DAYS_PER_YEAR, vy = 2.37847173959480950e-03 * DAYS_PER_YEAR,
      vz = -2.96589568540237556e-05 * DAYS_PER_YEAR, mass = 4.36624404335156298e-05 * SOLAR_MASS },
    { x = 1.53796971148509165e+01, y = -2.59193146099879641e+01, z = 1.79258772950371181e-01,
      vx = 2.68067772490389322e-03 * DAYS_PER_YEAR, vy = 1.62824170038242295e-03 * DAYS_PER_YEAR,
      vz = -9.51592254519715870e-05 * DAYS_PER_YEAR, mass = 5.15138902046611451e-05 * SOLAR_MASS },
}

local function advance(n, dt)
    for i = 1, n do
        local bi = bodies[i]
        for j = i + 1, n do
            local bj = bodies[j]
            local dx, dy, dz = bi.x - bj.x, bi.y - bj.y, bi.z - bj.z
            local d2 = dx * dx + dy * dy + dz * dz
            local mag = dt / (d2 * sqrt(d2))
            local bm, bjm = bi.mass * mag, bj.mass * mag
            bi.vx, bi.vy, bi.vz = bi.vx - dx * bjm, bi.vy - dy * bjm, bi.vz - dz * bjm
            bj.vx, bj.vy, bj.vz = bj.vx + dx * bm, bj.vy + dy * bm, bj.vz + dz * bm
        end
    end
    for i = 1, n do
        local b = bodies[i]
        b.x, b.y, b.z = b.x + dt * b.vx, b.y + dt * b.vy, b.z + dt * b.vz
    end
end

local function energy(n)
    local e = 0
    for i = 1, n do
        local bi = bodies[i]
        e = e + 0.5 * bi.mass * (bi.vx * bi.vx + bi.vy * bi.vy + bi.vz * bi.vz)
        for j = i + 1, n do
            local bj = bodies[j]
            local dx, dy, dz = bi.x - bj.x, bi.y - bj.y, bi.z - bj.z
            e = e - bi.mass * bj.mass / sqrt(dx * dx + dy * dy + dz * dz)
        end
    end
    return e
end

local px, py, pz = 0, 0, 0
for _, b in ipairs(bodies) do
    px, py, pz = px + b.vx * b.mass, py + b.vy * b.mass, pz + b.vz * b.mass
end
bodies[1].vx, bodies[1].vy, bodies[1].vz = -px / SOLAR_MASS, -py / SOLAR_MASS, -pz / SOLAR_MASS

print(string.format("%0.9f", energy(#bodies)))
for step = 1, 5 do
    for _ = 1, 2000 do advance(#bodies, 0.01) end
    print(step * 2000, string.format("%0.9f %.17g", energy(#bodies), bodies[2].x))
end

local function A(i, j)
    local ij = i + j - 1
    return 1.0 / (ij * (ij - 1) * 0.5 + i)
end
local function Av(x, y, N)
    for i = 1, N do
        local a = 0
        for j = 1, N do a = a + x[j] * A(i, j) end
        y[i] = a
    end
end
local function Atv(x, y, N)
    for i = 1, N do
        local a = 0
        for j = 1, N do a = a + x[j] * A(j, i) end
        y[i] = a
    end
end
local N = 60
local u, v, t = {}, {}, {}
for i = 1, N do u[i] = 1 end
for _ = 1, 10 do
    Av(u, t, N); Atv(t, v, N)
    Av(v, t, N); Atv(t, u, N)
end
local vBv, vv = 0, 0
for i = 1, N do
    local ui, vi = u[i], v[i]
    vBv, vv = vBv + ui * vi, vv + vi * vi
end
print(string.format("spectral norm %0.9f", sqrt(vBv / vv)))

local h = 0
for i = 1, 200000 do h = (h * 31 + i) & 0xffffffff end
print("hash", h)
