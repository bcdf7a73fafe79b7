// lock, agents and --wait-all: yuxi-configctl's uses of Redis.
#include "cli/redis_commands.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "admin/connection.hpp"
#include "core/signing.hpp"
#include "core/text.hpp"
#include "yuxi/config/lock.hpp"

extern char** environ;

namespace yuxi::config::cli {
namespace {

using nlohmann::json;
using Seconds = std::chrono::duration<double>;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds millis(Seconds s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(s);
}

std::string shown(const RedisEndpoint& e) {
    if (e.uses_sentinel()) {
        return "Redis master '" + e.sentinel_master + "' of the Sentinels " + e.sentinels.front();
    }
    return "Redis at " + e.host + ":" + std::to_string(e.port);
}

CommandError unreachable(const RedisEndpoint& e, const LockError& x, std::string_view consequence) {
    return CommandError(Exit::unavailable,
                        "cannot use " + shown(e) + " (" + to_string(x.kind()) + "): " + x.what() +
                            "; check REDIS_HOST/REDIS_PORT/REDIS_PASSWORD or REDIS_SENTINELS (or "
                            "--redis-host, --redis-port)" +
                            std::string(consequence));
}

// The revision lag is measured against: the database's when it can be read, else the
// highest an agent reports.
std::pair<std::uint64_t, bool> reference_revision(const DatabaseFlags& flags,
                                                  const std::vector<AgentStatus>& agents,
                                                  std::ostream& err) {
    std::uint64_t highest = 0;
    for (const AgentStatus& a : agents) {
        highest = std::max(highest, a.revision);
    }
    const auto target = admin::resolve_database(flags.database_url);
    if (!target) {
        return {highest, false};  // no database configured: not an error for `agents`
    }
    try {
        admin::Connection db(*target, "yuxi-configctl");
        return {admin::database_revision(db), true};
    } catch (const AdminError& e) {
        err << "yuxi-configctl: warning: " << e.what() << "; lag is against the highest revision "
            << "an agent reports\n";
        return {highest, false};
    }
}

std::string age_text(std::int64_t ms) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << "s";
    return s.str();
}

void print_agents(const std::vector<AgentStatus>& agents, std::uint64_t reference, bool from_db,
                  bool as_json, std::ostream& out) {
    const auto lag = [&](const AgentStatus& a) {
        return reference > a.revision ? reference - a.revision : 0;
    };
    if (as_json) {
        out << "{\"reference_revision\":" << reference << ",\"reference\":\""
            << (from_db ? "database" : "agents") << "\",\"agents\":[";
        for (std::size_t i = 0; i < agents.size(); ++i) {
            const AgentStatus& a = agents[i];
            out << (i != 0 ? "," : "") << "{\"pod\":" << quote(a.pod)
                << ",\"role\":" << quote(a.role) << ",\"revision\":" << a.revision
                << ",\"lag\":" << lag(a) << ",\"heartbeat_age_ms\":" << a.heartbeat_age_ms
                << ",\"state\":" << quote(a.state) << ",\"segment\":" << quote(a.segment)
                << ",\"live\":" << (a.live ? "true" : "false")
                << ",\"rejected_keys\":" << a.rejected_keys << ",\"rejected\":[";
            for (std::size_t j = 0; j < a.rejected.size(); ++j) {
                const AgentRejection& r = a.rejected[j];
                out << (j != 0 ? "," : "") << "{\"revision\":" << r.revision
                    << ",\"namespace\":" << quote(r.ns) << ",\"key\":" << quote(r.key)
                    << ",\"reason\":" << quote(r.reason) << '}';
            }
            out << "]}";
        }
        out << "]}\n";
        return;
    }
    std::size_t width = 3;
    for (const AgentStatus& a : agents) {
        width = std::max(width, a.pod.size());
    }
    const auto row = [&](std::string_view pod, std::string_view role, std::string_view rev,
                         std::string_view lag_text, std::string_view age, std::string_view state,
                         std::string_view live) {
        out << std::left << std::setw(static_cast<int>(width) + 2) << pod << std::setw(10) << role
            << std::setw(10) << rev << std::setw(8) << lag_text << std::setw(11) << age
            << std::setw(10) << state << live << '\n';
    };
    row("POD", "ROLE", "REVISION", "LAG", "HEARTBEAT", "STATE", "LIVE");
    std::size_t live = 0;
    for (const AgentStatus& a : agents) {
        live += a.live ? 1 : 0;
        row(a.pod, a.role, std::to_string(a.revision), std::to_string(lag(a)),
            age_text(a.heartbeat_age_ms), a.state, a.live ? "yes" : "no");
        for (const AgentRejection& r : a.rejected) {
            out << "  refused " << r.ns << " '" << printable(r.key, 100) << "' at revision "
                << r.revision << ": " << printable(r.reason, 300) << '\n';
        }
        if (a.rejected_keys > a.rejected.size()) {
            out << "  ... " << (a.rejected_keys - a.rejected.size()) << " more refused key(s)\n";
        }
    }
    out << agents.size() << " agent(s), " << live << " live; lag against "
        << (from_db ? "the database's revision " : "the highest revision reported ") << reference
        << '\n';
}

// ---------------------------------------------------------------------------------------
// lock

std::atomic<pid_t> g_child{0};
static_assert(std::atomic<pid_t>::is_always_lock_free);  // used by a signal handler

extern "C" void forward_signal(int sig) {
    const pid_t pid = g_child.load();
    if (pid > 0) {
        ::kill(pid, sig);
    }
}

void forward_signals() {
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
        ::sigaction(sig, &sa, nullptr);
    }
}

// CMD with our environment plus YUXI_LOCK_NAME and YUXI_LOCK_FENCING_TOKEN; returns its pid,
// or an errno.
std::pair<pid_t, int> spawn(const std::vector<std::string>& cmd, const std::string& name,
                            std::uint64_t token) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view v(*e);
        if (!v.starts_with("YUXI_LOCK_NAME=") && !v.starts_with("YUXI_LOCK_FENCING_TOKEN=")) {
            env.emplace_back(v);
        }
    }
    env.push_back("YUXI_LOCK_NAME=" + name);
    env.push_back("YUXI_LOCK_FENCING_TOKEN=" + std::to_string(token));
    std::vector<char*> envp;
    for (std::string& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> args = cmd;
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);

    // The child starts with no blocked signals and default dispositions (our handlers and
    // the lock's SIGPIPE blocking are ours, not CMD's).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    return {rc == 0 ? pid : -1, rc};
}

int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return 127;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

Exit run(const AgentsRequest& r, Io io) {
    Fleet fleet(redis_endpoint(r.redis),
                std::chrono::duration_cast<std::chrono::milliseconds>(Seconds(r.stale_after)),
                fleet_trust(r.redis));
    const std::vector<AgentStatus> agents = fleet.agents();
    for (const std::string& w : fleet.take_warnings()) {
        io.err << "yuxi-configctl: warning: " << w << '\n';
    }
    const auto [reference, from_db] = reference_revision(r.db, agents, io.err);
    print_agents(agents, reference, from_db, r.json, io.out);
    return Exit::ok;
}

Exit run(const KeygenRequest&, Io io) {
    io.out << SigningKey::generate_base64() << '\n';
    return Exit::ok;
}

Exit run(const LockRequest& r, Io io) {
    std::ostream& err = io.err;
    const std::string& name = r.name;
    const std::vector<std::string>& cmd = r.command;
    const RedisEndpoint e = redis_endpoint(r.redis);
    DistributedLock lock(e, name, millis(Seconds(r.ttl)));
    std::atomic<bool> lost{false};
    try {
        const bool acquired = r.wait ? lock.acquire(millis(Seconds(*r.wait))) : lock.try_acquire();
        if (!acquired) {
            err << "yuxi-configctl: lock '" << name << "' is held by somebody else"
                << (r.wait ? " (waited " + (std::ostringstream() << *r.wait).str() + " s)"
                           : std::string())
                << "; '" << cmd[0] << "' was not run (--wait S waits for it)\n";
            return Exit::lock_busy;
        }
        // The callback runs on the renewal thread: flag, tell (write(2): the streams belong
        // to the main thread), and stop the child.
        lock.start_renewal([&lost, name](LossReason reason) {
            lost = true;
            const std::string text = "yuxi-configctl: warning: lost lock '" + name + "' (" +
                                     to_string(reason) + "); sending SIGTERM to the command\n";
            (void)!::write(STDERR_FILENO, text.data(), text.size());
            forward_signal(SIGTERM);
        });
    } catch (const LockError& x) {
        throw unreachable(e, x, "; the command was not run");
    }
    if (lost) {
        return Exit::lock_lost;
    }
    forward_signals();
    const auto [pid, error] = spawn(cmd, name, lock.fencing_token());
    if (pid < 0) {
        err << "yuxi-configctl: cannot run '" << cmd[0] << "': " << std::strerror(error) << '\n';
        return static_cast<Exit>(error == ENOENT ? 127 : 126);
    }
    g_child = pid;
    if (lost) {
        forward_signal(SIGTERM);  // lost between the renewal's start and the spawn
    }
    const int status = wait_child(pid);
    g_child = 0;
    try {
        (void)lock.release();
    } catch (const LockError& x) {
        err << "yuxi-configctl: warning: could not release lock '" << name << "': " << x.what()
            << " (it frees after its TTL)\n";
    }
    if (lost) {
        err << "yuxi-configctl: the lock was lost while '" << cmd[0] << "' ran; it exited with "
            << status << '\n';
        return Exit::lock_lost;
    }
    return static_cast<Exit>(status);
}

}  // namespace yuxi::config::cli
