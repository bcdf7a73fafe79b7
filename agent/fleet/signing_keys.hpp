// The fleet's signing keys at run time: loaded from the environment or files at start,
// and re-read when a file changes (a Kubernetes Secret volume is updated in place by a
// symlink swap), so that a key rotates with no restart (docs/security.md, "Rotating
// the key"). A file that changes to something that is not a key is refused: the keys
// in use stay, and the problem is logged once per change, naming the file only.
//
// A key that stops being configured is still accepted for kRetiredGrace: agents pick up a
// change of the files up to a second apart (and a Secret's two files are not read in one
// instant), so without it an agent that switched to a new key would, for a moment, refuse
// a peer still signing with the old one.
//
// Not thread-safe: the relay's loop owns it.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/ops/options.hpp"
#include "core/signing.hpp"

namespace yuxi::config::agent {

inline constexpr std::chrono::seconds kRetiredGrace{10};

class SigningKeys {
  public:
    // The keys `settings` name; throws OptionsError if they cannot be loaded (the options
    // checked them, so this is a file that changed since).
    explicit SigningKeys(const SigningSettings& settings);

    // The current ring. Valid until the next refresh() that changes it.
    const KeyRing& ring() const noexcept { return *ring_; }

    // Re-reads a key file that changed since the last look, and lets keys retired more than
    // kRetiredGrace ago go; true if the ring changed.
    bool refresh();

  private:
    struct Watched {
        std::string path;
        ino_t inode = 0;
        dev_t device = 0;
        timespec modified{};
        off_t size = -1;
    };
    static bool changed(Watched& w);
    struct Retired {
        SigningKey key;
        std::chrono::steady_clock::time_point since;
    };
    // The configured keys, with the retired ones still in their grace.
    std::unique_ptr<KeyRing> load() const;

    SigningSettings settings_;
    Watched current_file_;
    Watched previous_file_;
    std::unique_ptr<KeyRing> ring_;
    std::vector<Retired> retired_;
};

}  // namespace yuxi::config::agent
