# cmake -DIN=file -DOUT=file.cpp -P embed_file.cmake: writes the bytes of IN as a char
# array (no raw-string delimiter can clash with the content) behind
# sidecar_template_text().
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    "
  bytes "${bytes}")
file(WRITE ${OUT} "// Generated from injector/sidecar_template.json by injector/embed_file.cmake.
#include <string_view>

namespace yuxi::config::injector {
namespace {
constexpr char kBytes[] = {
    ${bytes}};
}  // namespace

std::string_view sidecar_template_text() noexcept {
    return {kBytes, sizeof kBytes};
}

}  // namespace yuxi::config::injector
")
