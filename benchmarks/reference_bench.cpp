// Benchmark of the CPU reference interpreter's matmul: times run_reference on an in-memory image
// holding one M x K by (N x K)^T matmul (u8 and i8, M = N = K = 256 and 1024), prints the median
// time and GOPS (2*M*N*K operations), and spot-checks results against a naive computation.
// Usage: pxbench_reference [runs per size (default 7)]
#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

void put_tensor(px::Image& image, std::uint32_t& pc, std::uint8_t id, std::uint32_t dtype,
                std::uint32_t x, std::uint32_t y, std::uint32_t rows, std::uint32_t cols) {
    auto lo = [](std::uint32_t v) { return std::uint8_t(v & 255); };
    auto hi = [](std::uint32_t v) { return std::uint8_t(v >> 8); };
    image.set_pixel(pc++, 0, px::Pixel{px::OP_TENSOR, id, std::uint8_t(dtype), 0});
    image.set_pixel(pc++, 0, px::Pixel{lo(x), hi(x), lo(y), hi(y)});
    image.set_pixel(pc++, 0, px::Pixel{lo(rows), hi(rows), lo(cols), hi(cols)});
}

struct Case {
    px::Image image;
    px::Tensor c, a, b;
};

// c (i32, n x n) at (0, n + 1), a (n x n) at (0, 1), b (n x n) at (n / 4, 1); random a and b.
Case make_case(std::uint32_t n, std::uint32_t dtype) {
    const std::uint32_t k_pixels = (n + 3) / 4;
    Case m{px::Image(std::max(n, 2 * k_pixels), 2 * n + 1),
           {0, n + 1, n, n, px::DTYPE_I32},
           {0, 1, n, n, dtype},
           {k_pixels, 1, n, n, dtype}};
    std::uint32_t pc = 0;
    put_tensor(m.image, pc, 1, px::DTYPE_I32, m.c.x, m.c.y, n, n);
    put_tensor(m.image, pc, 2, dtype, m.a.x, m.a.y, n, n);
    put_tensor(m.image, pc, 3, dtype, m.b.x, m.b.y, n, n);
    m.image.set_pixel(pc++, 0, px::Pixel{px::OP_MATMUL, 1, 2, 3});
    m.image.set_pixel(pc++, 0, px::Pixel{px::OP_HALT, 0, 0, 0});
    std::mt19937 rng(n * 10 + dtype);
    std::uint8_t* data = m.image.data() + std::size_t(m.image.width()) * 4;
    std::generate(data, data + std::size_t(m.image.width()) * 4 * n,
                  [&] { return std::uint8_t(rng()); });
    return m;
}

// Compares a sample of c against a naive dot product; returns the number of mismatches.
int spot_check(const Case& m, const px::Image& result) {
    std::mt19937 rng(7);
    int bad = 0;
    for (int i = 0; i < 64; ++i) {
        const std::uint32_t row = rng() % m.c.rows, col = rng() % m.c.cols;
        std::int64_t sum = 0;
        for (std::uint32_t k = 0; k < m.a.cols; ++k)
            sum += px::load_element(result, m.a, row, k) * px::load_element(result, m.b, col, k);
        if (px::load_element(result, m.c, row, col) != std::int32_t(std::uint32_t(sum))) ++bad;
    }
    return bad;
}

bool bench(std::uint32_t n, std::uint32_t dtype, int runs) {
    const Case m = make_case(n, dtype);
    std::vector<double> ms;
    px::Image image = m.image;
    for (int r = 0; r <= runs; ++r) { // run 0 warms up
        image = m.image;
        const auto start = std::chrono::steady_clock::now();
        const px::RunOutcome outcome = px::run_reference(image);
        const auto stop = std::chrono::steady_clock::now();
        if (outcome.fault || !outcome.halted) {
            std::fprintf(stderr, "%s\n", px::describe(outcome.fault, m.image).c_str());
            return false;
        }
        if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    const int bad = spot_check(m, image);
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double gops = 2.0 * n * n * n / (median * 1e-3) / 1e9;
    std::printf("matmul %-3s %4ux%ux%u  median %9.2f ms  (min %9.2f, max %9.2f, %d runs)  "
                "%7.2f GOPS  %s\n",
                std::string(px::dtype_name(dtype)).c_str(), n, n, n, median, ms.front(), ms.back(),
                runs, gops, bad == 0 ? "spot check ok" : "SPOT CHECK FAILED");
    return bad == 0;
}

} // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
    std::printf("pxbench_reference: run_reference matmul, %u hardware threads\n",
                std::thread::hardware_concurrency());
    bool ok = true;
    for (std::uint32_t n : {256u, 1024u})
        for (std::uint32_t dtype : {px::DTYPE_U8, px::DTYPE_I8})
            ok = bench(n, dtype, runs) && ok;
    return ok ? 0 : 1;
}
