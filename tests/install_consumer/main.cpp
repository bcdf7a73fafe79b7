// app SEGMENT KEY: prints the value of KEY in SEGMENT, unquoted if it is a JSON string.
// Exit status: 0 printed, 1 no such key, 3 the segment cannot be opened (the message of the
// SegmentError on stderr), 2 usage.
#include <iostream>

#include <yuxi/config/client.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: app SEGMENT KEY\n";
        return 2;
    }
    try {
        const auto cfg = yuxi::config::Client::open(argv[1]);
        const auto value = cfg.get_string(argv[2]);
        if (!value) {
            std::cerr << "no key " << argv[2] << " at revision " << cfg.revision() << '\n';
            return 1;
        }
        std::cout << *value << '\n';
        return 0;
    } catch (const yuxi::config::SegmentError& e) {
        std::cerr << "SegmentError: " << e.what() << '\n';
        return 3;
    }
}
