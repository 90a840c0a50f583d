// Each batch size: pack (in memory), open a session (resident image, recorded program), check
// `verified_steps` steps against the reference (the first on the whole image), then time steps
// without the check: submit to result, only the input slot written and the outputs read.
#include "cartridge_bench.hpp"

#include "pxvm/image.hpp"
#include "pxvm/pack.hpp"
#include "pxvm/vulkan/cartridge_session.hpp"
#include "pxvm/vulkan/device_info.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>

namespace px::bench {
namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The largest batch whose cartridge fits one image (the packer refuses larger ones).
std::uint32_t largest_batch(const Safetensors& weights, std::string_view text) {
    std::uint32_t lo = 1, hi = 32767;
    PackOptions o;
    o.calibration_windows = 64;
    while (lo < hi) {
        const std::uint32_t mid = lo + (hi - lo + 1) / 2;
        o.batch = mid;
        if (pack_cartridge(weights, text, o))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// Prompts: `count` pieces of the text, spread over it, each at least one window long.
std::vector<std::vector<std::uint32_t>> prompts_from(const CartridgeManifest& m,
                                                     std::string_view text, std::uint32_t count) {
    std::vector<std::vector<std::uint32_t>> out;
    const std::size_t piece = m.context * 2;
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::size_t at = (text.size() - piece) * i / count;
        std::string chunk(text.substr(at, piece));
        std::erase_if(chunk, [](char c) { return (unsigned char)c >= 0x80; });
        auto ids = tokenize(m, chunk.empty() ? std::string(" ") : chunk);
        out.push_back(ids ? *ids : std::vector<std::uint32_t>{});
    }
    return out;
}

} // namespace

int run_cartridge_bench(const CartridgeBenchOptions& options) {
    auto weights = load_safetensors(options.weights);
    if (!weights) {
        std::cerr << "pxbench cartridge: " << weights.error().message << "\n";
        return 1;
    }
    auto bytes = read_file(options.calibration, std::uint64_t(1) << 30);
    const std::string text = bytes ? std::string(bytes->begin(), bytes->end()) : std::string();
    if (text.size() < 4096) {
        std::cerr << "pxbench cartridge: " << options.calibration
                  << ": cannot read at least 4 KiB of text\n";
        return 1;
    }
    nlohmann::json results = nlohmann::json::array(), device_json;
    int status = 0;
    for (const std::string& spec : options.batches) {
        std::uint32_t batch = 0;
        if (spec == "max")
            batch = largest_batch(*weights, text);
        else
            try {
                batch = std::uint32_t(std::stoul(spec));
            } catch (const std::exception&) {
                std::cerr << "pxbench cartridge: --batches: '" << spec
                          << "' is not a number or max\n";
                return 1;
            }
        PackOptions po;
        po.batch = batch;
        po.name = "benchmark";
        auto packed = pack_cartridge(*weights, text, po);
        if (!packed) {
            std::cerr << "pxbench cartridge: batch " << batch << ": " << packed.error().message
                      << "\n";
            return 1;
        }
        const Cartridge cart{packed->image, packed->manifest, {}};
        const auto prompts = prompts_from(cart.manifest, text, batch);

        // The reference check: the same session type as pxrun, verification on; closed before
        // the timed one opens.
        vk::CartridgeSessionOptions so;
        so.device = options.device;
        so.verify = true;
        double verify_ms = 0;
        std::string device_name;
        vk::DeviceInfo info;
        Image image = cart.image;
        GenerateOptions g;
        {
            auto checked = vk::CartridgeSession::open(cart, so);
            if (!checked) {
                std::cerr << "pxbench cartridge: " << checked.error().message << "\n";
                return 1;
            }
            g.tokens = options.verified_steps;
            auto verified = generate(image, cart.manifest, prompts, g, checked->as_step());
            if (!verified) {
                std::cerr << "pxbench cartridge: batch " << batch << ": "
                          << verified.error().message << "\n";
                status = verified.error().code == ErrorCode::mismatch ? 3 : 1;
                continue;
            }
            verify_ms = checked->stats().verify_ms / double(checked->stats().steps);
            info = checked->device_info();
            device_name = checked->device_name();
        }

        so.verify = false;
        so.read_logits = false; // greedy: only the next tokens come back
        auto session = vk::CartridgeSession::open(cart, so);
        if (!session) {
            std::cerr << "pxbench cartridge: " << session.error().message << "\n";
            return 1;
        }
        std::vector<double> host_ms, gpu_ms, write_ms, run_ms, read_ms;
        double last_host = 0, last_gpu = 0, last_write = 0, last_run = 0, last_read = 0;
        const auto start = std::chrono::steady_clock::now();
        bool warm = false;
        g.after_step = [&](std::uint32_t) {
            const vk::CartridgeSessionStats& st = session->stats();
            const double h = st.host_step_ms - last_host, d = st.gpu_execute_ms - last_gpu;
            const double w = st.host_write_ms - last_write, x = st.host_run_ms - last_run,
                         rd = st.host_read_ms - last_read;
            last_host = st.host_step_ms;
            last_gpu = st.gpu_execute_ms;
            last_write = st.host_write_ms;
            last_run = st.host_run_ms;
            last_read = st.host_read_ms;
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (!warm && elapsed > 0.5) {
                warm = true; // idle GPUs clock up over ~0.5 s
            } else if (warm) {
                host_ms.push_back(h);
                gpu_ms.push_back(d);
                write_ms.push_back(w);
                run_ms.push_back(x);
                read_ms.push_back(rd);
            }
        };
        // Timed in chunks of steps until the time is up (the first 0.5 s warm the GPU up).
        g.tokens = 16;
        while (true) {
            auto ran = session->generate(prompts, g);
            if (!ran) {
                std::cerr << "pxbench cartridge: batch " << batch << ": " << ran.error().message
                          << "\n";
                return 1;
            }
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (warm && elapsed > 0.5 + options.seconds && host_ms.size() >= 10) break;
        }
        const double step = median(host_ms), gpu = median(gpu_ms);
        std::cout << std::fixed << std::setprecision(3) << "batch " << std::setw(5) << batch << " ("
                  << cart.image.width() << "x" << cart.image.height() << "): step " << step
                  << " ms (GPU " << gpu << " ms; host write " << median(write_ms)
                  << ", submit-wait " << median(run_ms) << ", read " << median(read_ms) << "), "
                  << std::setprecision(0) << double(batch) * 1e3 / step << " tokens/s; reference "
                  << "check " << std::setprecision(3) << verify_ms << " ms/step, "
                  << options.verified_steps << " steps verified\n";
        results.push_back({{"batch", batch},
                           {"image", std::to_string(cart.image.width()) + "x" +
                                         std::to_string(cart.image.height())},
                           {"steps_timed", host_ms.size()},
                           {"step_ms_median", step},
                           {"gpu_ms_median", gpu},
                           {"host_write_ms_median", median(write_ms)},
                           {"host_submit_wait_ms_median", median(run_ms)},
                           {"host_read_ms_median", median(read_ms)},
                           {"step_ms_samples", host_ms},
                           {"tokens_per_s", double(batch) * 1e3 / step},
                           {"verified_steps", options.verified_steps},
                           {"verify_ms_per_step", verify_ms}});
        device_json = {{"name", device_name},
                       {"driver", vk::format_driver_version(info)},
                       {"api", vk::format_api_version(info.api_version)}};
    }
    if (!options.json_path.empty()) {
        nlohmann::json j = {{"schema", "pxbench-cartridge-1"},
                            {"weights", options.weights},
                            {"device", device_json},
                            {"results", results}};
        if (auto written = write_file_atomic(options.json_path, std::string_view(j.dump(2) + "\n"));
            !written) {
            std::cerr << "pxbench cartridge: " << written.error().message << "\n";
            return 1;
        }
    }
    return status;
}

} // namespace px::bench
