// One entry point per decoder of outside input, shared by the fuzz targets (one each,
// tests/fuzz/*_fuzz.cpp) and the hostile-input unit test, which replays the committed
// table (tests/fuzz/corpus/<decoder>/) through the same calls.
//
// Each call decodes `input` as the agent would, checks the decoder's promises (a value
// that survives a round trip unchanged, or a non-empty reason) and aborts if one is
// broken, so that the fuzzer reports it. It returns whether the input was accepted.
#pragma once

#include <string_view>
#include <vector>

namespace yuxi::config::harness {

enum class Outcome { accepted, refused };

// The decoders, by the name of their corpus directory.
const std::vector<std::string_view>& decoder_names();

// Runs decoder `name` on `input`. An unknown name aborts.
Outcome run_decoder(std::string_view name, std::string_view input);

}  // namespace yuxi::config::harness
