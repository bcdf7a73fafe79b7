// make_segment NAME KEY JSON: publishes one config entry in a new segment NAME and exits;
// the segment stays in /dev/shm for the installed consumer to read. Test helper only.
#include <iostream>
#include <vector>

#include "agent/segment/segment_writer.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: make_segment NAME KEY JSON\n";
        return 2;
    }
    try {
        yuxi::config::agent::WriterOptions options;
        options.name = argv[1];
        options.min_arena_bytes = 1 << 16;
        options.min_slots = 16;
        const std::vector<yuxi::config::agent::Change> initial = {
            {yuxi::config::Namespace::config, argv[2], argv[3], ""}};
        const auto writer = yuxi::config::agent::SegmentWriter::create(options, initial, 1);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "make_segment: " << e.what() << '\n';
        return 1;
    }
}
