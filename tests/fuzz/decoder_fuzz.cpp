// A libFuzzer target for one decoder of outside input (YUXI_FUZZ_DECODER, set per target
// by CMakeLists.txt): harness/decoders.hpp decodes each input as the agent would and
// aborts when the decoder breaks a promise.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "decoders.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    (void)yuxi::config::harness::run_decoder(YUXI_FUZZ_DECODER, input);
    return 0;
}
