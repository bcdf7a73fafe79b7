// What a bench prints about the machine it ran on.
#pragma once

#include <fstream>
#include <string>

namespace yuxi::config::bench {

// The CPU's model name from /proc/cpuinfo.
inline std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("model name")) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown CPU";
}

}  // namespace yuxi::config::bench
