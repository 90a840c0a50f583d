// Model cartridges (.pxa, docs/CARTRIDGE.md): one 8-bit RGBA PNG whose pixels hold a program row,
// the weights and the input and output slots, with a JSON manifest in an iTXt chunk (keyword
// "pxvm-cartridge"). This file reads and writes them, checks them (format version, checksum of
// every pixel the program never writes, regions against the program row), turns text into token
// windows and reads the answer back. Running them is the executor's business (run_reference, or
// a device through px::vk::CartridgeSession).
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/result.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px {

/// The cartridge format this pxVM writes and the newest it reads.
inline constexpr std::uint32_t CARTRIDGE_FORMAT_VERSION = 1;
/// The iTXt keyword of the manifest.
inline constexpr std::string_view CARTRIDGE_KEYWORD = "pxvm-cartridge";
/// Longest prompt (in characters) pxVM accepts: the model sees only the last `context` tokens,
/// so longer text is a mistake, not a bigger input.
inline constexpr std::size_t MAX_PROMPT_CHARS = 65536;
/// Most tokens a manifest's self-test may generate: a plain `pxrun model.pxa` runs the self-test,
/// and the file must not choose unbounded work (longer runs are the user's --tokens).
inline constexpr std::uint32_t MAX_SELF_TEST_TOKENS = 4096;

/// A named tensor of the cartridge: where it is, what it holds and how to read its integers.
struct CartridgeRegion {
    std::string name; ///< "tokens", "embed.weight", "fc1.weight", "logits", "next", ...
    /// "input" (written by the host before a run), "output" (read after it), "activation"
    /// (written by the program), "weight" or "bias" (constant: covered by the checksum).
    std::string role;
    std::uint32_t id = 0; ///< tensor id in the program row
    Tensor tensor;        ///< origin, shape and dtype, as the program row declares it
    double scale = 0;     ///< real value = scale * (integer - zero_point); 0 when not a number
    std::int32_t zero_point = 0;

    /// Written by a run (input, output or activation): outside the checksum.
    bool written_at_run_time() const;
};

/// The manifest, parsed.
struct CartridgeManifest {
    std::uint32_t format_version = CARTRIDGE_FORMAT_VERSION;
    std::uint32_t protocol_version = 1;
    std::string min_pxvm_version; ///< the oldest pxVM that runs it
    std::string name, licence, description;
    std::string architecture;       ///< "window-mlp" or "transformer"
    std::uint32_t context = 0;      ///< tokens in a window (a transformer: positions per slot)
    std::uint32_t batch = 0;        ///< windows (sequences) one run computes: rows of the input
    std::vector<std::string> vocab; ///< token id -> text (UTF-8); vocab[pad_id] is ""
    std::uint32_t pad_id = 0;       ///< fills a window before the start of the text
    std::vector<CartridgeRegion> regions;
    std::string pixels_sha256; ///< hex SHA-256 of every pixel outside the run-time regions
    std::string self_test_prompt;
    std::uint32_t self_test_tokens = 0;
    std::string self_test_expect; ///< the exact greedy continuation of the prompt
    std::string extra_json;       ///< "model" details (training, metrics), kept verbatim

    /// The region called `name`, or nullptr.
    const CartridgeRegion* region(std::string_view name) const;
};

/// A cartridge in memory: the image as stored (program, weights, empty slots) and its manifest.
struct Cartridge {
    Image image;
    CartridgeManifest manifest;
    std::string manifest_json; ///< the iTXt text as stored
};

/// Reads and checks `path`: a PNG with a valid manifest whose format is not newer than this
/// pxVM's, whose regions are the tensors the program row declares, and whose checksum matches.
/// Every error names the file and the problem.
Result<Cartridge> load_cartridge(const std::string& path);
/// The same for bytes already in memory (`name` is used in messages).
Result<Cartridge> decode_cartridge(std::span<const std::uint8_t> file, const std::string& name);

/// Fills manifest.pixels_sha256 from the image, serialises the manifest and writes the PNG with
/// it (atomically).
Result<void> save_cartridge(const std::string& path, Image image, CartridgeManifest manifest);
/// The PNG bytes save_cartridge writes.
Result<std::vector<std::uint8_t>> encode_cartridge(const Image& image,
                                                   const CartridgeManifest& manifest);

/// Hex SHA-256 over the row-major RGBA bytes of every pixel outside the regions written at run
/// time and outside the fault pixel (W-1, 0).
std::string cartridge_pixels_sha256(const Image& image, const CartridgeManifest& manifest);
/// The manifest as JSON text (what the iTXt chunk holds).
std::string manifest_to_json(const CartridgeManifest& manifest);
/// Parses and checks manifest JSON; `name` is used in messages.
Result<CartridgeManifest> manifest_from_json(std::string_view json, const std::string& name);

/// Text to token ids with the cartridge's vocabulary (one id per character of the vocabulary,
/// longest match first). Refuses empty text, text over MAX_PROMPT_CHARS characters and
/// characters outside the vocabulary (naming the first one and its position).
Result<std::vector<std::uint32_t>> tokenize(const CartridgeManifest& manifest,
                                            std::string_view text);
/// The same for a text of any length (a corpus to score or calibrate on); empty text gives no ids.
Result<std::vector<std::uint32_t>> tokenize_text(const CartridgeManifest& manifest,
                                                 std::string_view text);
/// Token ids back to text.
std::string detokenize(const CartridgeManifest& manifest, std::span<const std::uint32_t> ids);

/// The window that predicts the token after `history`: its last `context` ids, oldest first,
/// left-padded with pad_id.
std::vector<std::uint32_t> window_of(const CartridgeManifest& manifest,
                                     std::span<const std::uint32_t> history);
/// Writes window_of(history) into row `row` of the input slot.
void write_window(Image& image, const CartridgeManifest& manifest, std::uint32_t row,
                  std::span<const std::uint32_t> history);
/// A transformer's step input for row `row` (slot `row`): `token` at `position`.
void write_step(Image& image, const CartridgeManifest& manifest, std::uint32_t row,
                std::uint32_t token, std::uint32_t position);
/// The predicted token id of each row (the "next" output region).
std::vector<std::uint32_t> read_next(const Image& image, const CartridgeManifest& manifest);
/// Row `row` of the "logits" output region, as integers (real logit = scale * value).
std::vector<std::int64_t> read_logits(const Image& image, const CartridgeManifest& manifest,
                                      std::uint32_t row);
/// The pixel rectangles of the input slot and of the output regions (what a device writes
/// before a step and reads after it).
struct SlotRect {
    std::uint32_t x = 0, y = 0, width = 0, height = 0;
};
SlotRect input_rect(const CartridgeManifest& manifest);
std::vector<SlotRect> output_rects(const CartridgeManifest& manifest);

/// Samples a token id from logits at `temperature` (> 0) with a host random stream:
/// deterministic for a given `state` (advanced by the call).
std::uint32_t sample_logits(std::span<const std::int64_t> logits, double scale, double temperature,
                            std::uint64_t& state);

/// One run of the cartridge's program over `image` whose input slot is written: leaves at least
/// the output regions of the result in `image`.
using CartridgeStep = std::function<Result<void>(Image&)>;
/// A step on the reference interpreter; a fault is an error naming it.
CartridgeStep reference_step();

struct GenerateOptions {
    std::uint32_t tokens = 0; ///< tokens generated after each prompt
    double temperature = 0;   ///< 0: greedy (the program's argmax); else sampled from the logits
    std::uint64_t seed = 0;   ///< the sampling stream's start
    /// Called after each step with the step index (for progress and timing); may be empty.
    std::function<void(std::uint32_t)> after_step;
};

/// Whether `prompts` prompts fit the cartridge's batch and its regions allow `options` (sampling
/// needs the logits); the error says what to change.
Result<void> check_generation(const CartridgeManifest& manifest, std::size_t prompts,
                              const GenerateOptions& options);

/// Generates options.tokens tokens after each of the prompts (at most manifest.batch; the other
/// rows get windows of padding): each step writes every row's window, runs `step` once and appends
/// each row's token. A transformer feeds each row one token a step (its prompt first) at its
/// position, its keys and values kept in `image` between steps. Returns the generated ids of each
/// prompt.
Result<std::vector<std::vector<std::uint32_t>>>
generate(Image& image, const CartridgeManifest& manifest,
         const std::vector<std::vector<std::uint32_t>>& prompts, const GenerateOptions& options,
         const CartridgeStep& step);

} // namespace px
